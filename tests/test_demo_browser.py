"""apps/demo in a real browser: Debian's headless Chromium (installed by .ci/run) opens the page,
uploads a synthetic image, presses the button, waits for the outputs (overlay, bird's-eye view,
3D scene, table of people) and takes a screenshot. Also: a port in use is refused up front."""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "apps" / "demo"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
BROWSER_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--window-size=1400,1700",
)  # fmt: skip
missing = [n for n in ("gradio", "selenium") if importlib.util.find_spec(n) is None]
needs_browser = pytest.mark.skipif(
    bool(missing) or not (CHROMIUM and DRIVER),
    reason=f"needs chromium + chromedriver (apt) and the demo groups (missing: {missing}); "
    "`.ci/run` installs them",
)


def colours(png: bytes) -> int:
    """Distinct colours of a screenshot (a blank canvas has one or two)."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    return len(np.unique(pixels, axis=0))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """The demo on a free port with the tiny model; yields (url, process)."""
    port = free_port()
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(APP), "--model", "tiny", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "UV"},  # never sync here
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the demo did not answer within 180 s"
        time.sleep(0.5)
    yield url, port, log
    proc.terminate()
    proc.wait(timeout=30)


@needs_browser
def test_page_in_headless_chromium(server, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, port, log = server
    assert f"serving on http://127.0.0.1:{port}" in log.read_text()  # local by default
    photo = tmp_path / "photo.png"
    pixels = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(photo)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in BROWSER_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 120)
        upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "input[type=file]"))
        upload.send_keys(str(photo))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "img[src]"))  # the upload shows
        button = next(b for b in driver.find_elements(By.TAG_NAME, "button") if "Find" in b.text)
        button.click()
        grid = "#people [role=grid]"  # a virtual table: the row count is an attribute
        wait.until(
            lambda d: d.find_elements(By.CSS_SELECTOR, f"{grid}[aria-rowcount='9']")  # + header
        )
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#overlay img[src]"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#bev img[src]"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#scene canvas"))
        scene = driver.find_element(By.CSS_SELECTOR, "#scene canvas")
        wait.until(lambda d: colours(scene.screenshot_as_png) > 50)  # the 3D view drew people
        overlay = driver.find_element(By.CSS_SELECTOR, "#overlay img")
        wait.until(lambda d: d.execute_script("return arguments[0].naturalWidth", overlay) > 0)
        size = driver.execute_script(
            "return [arguments[0].naturalWidth, arguments[0].naturalHeight]", overlay
        )
        bev = driver.find_element(By.CSS_SELECTOR, "#bev img")
        wait.until(lambda d: d.execute_script("return arguments[0].naturalWidth", bev) > 0)
        status = driver.find_element(By.ID, "status").text
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#people td")) >= 4)
        cells = driver.find_elements(By.CSS_SELECTOR, "#people td")[:4]
        first = [cell.get_attribute("textContent").strip() for cell in cells]
        screenshot = Path(os.environ.get("DEMO_SCREENSHOT", tmp_path / "demo.png"))
        assert driver.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    finally:
        driver.quit()
    assert size == [320, 240]  # the overlay is drawn on the uploaded photo
    assert status.startswith("8 people; vertical FoV")
    assert first[0] == "1" and 0.5 < float(first[1]) < 2.5  # person 1, a height in metres


def test_port_in_use_is_refused() -> None:
    """Refused before any heavy import, with the port named (a listening socket holds it)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, str(APP), "--port", str(port)], capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
    assert proc.returncode != 0
    assert f"--port {port}: 127.0.0.1:{port} is already in use" in proc.stderr
    assert "Traceback" not in proc.stderr
