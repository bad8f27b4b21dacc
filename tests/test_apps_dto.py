"""apps/dto demo: runs, prints the synthetic label and a table, writes its JSON atomically."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_and_writes_json(tmp_path):
    out = tmp_path / "results" / "demo.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "apps" / "dto"),
            "demo",
            "--scenes",
            "300",
            "--seed",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "SYNTHETIC" in proc.stdout
    report = json.loads(out.read_text())
    assert report["synthetic"] is True and report["scenes"] == 300
    rows = {r["method"]: r for r in report["rows"]}
    assert set(rows) == {"teacher", "paper +D", "paper +D+X", "official +D", "official +D+X"}
    for name, row in rows.items():
        assert name in proc.stdout
        assert 0.0 <= row["pair_order_accuracy"] <= 1.0
    # DTO's inter-human depth term beats the teacher on depth and height in this simulator
    assert rows["paper +D"]["depth_error_m"] < rows["teacher"]["depth_error_m"]
    assert rows["paper +D"]["height_error_cm"] < rows["teacher"]["height_error_cm"]
    assert list(out.parent.iterdir()) == [out]  # no temp file left behind
