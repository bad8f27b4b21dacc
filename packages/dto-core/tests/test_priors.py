"""Prior groups and Gaussians: thresholds, sources and adult prior modes."""

import numpy as np
import pytest

from dto_core.priors import (
    OFFICIAL_PRIORS,
    PAPER_PRIORS,
    PriorClass,
    height_prior,
    prior_class,
)

B, K, T = PriorClass.BABY, PriorClass.KID, PriorClass.TEEN
F, M, N = PriorClass.ADULT_FEMALE, PriorClass.ADULT_MALE, PriorClass.ADULT_NEUTRAL


def test_age_bins_at_their_edges():
    ages = [0.0, 2.999, 3.0, 7.999, 8.0, 14.999, 15.0, 90.0]
    got = prior_class(ages, [0.9] * len(ages))
    assert list(got) == [B, B, K, K, T, T, M, M]


def test_gender_thresholds_as_the_official_code():
    # P(male) < 0.33 female; P(male) >= 1 - 0.33 male; neutral in between
    p = [0.0, 0.3299, 0.33, 0.5, 0.6699, 1 - 0.33, 1.0]
    assert list(prior_class([30.0] * 7, p)) == [F, F, N, N, N, M, M]


def test_age_prior_off_makes_everyone_adult():
    assert list(prior_class([1.0, 5.0, 10.0], [0.1, 0.5, 0.9], use_age=False)) == [F, N, M]


def test_tables_hold_the_documented_values():
    assert OFFICIAL_PRIORS.mean == (0.801, 1.122, 1.477, 1.647, 1.784, 1.715)
    assert OFFICIAL_PRIORS.std == (0.126, 0.120, 0.156, 0.0707, 0.0759, 0.1)
    assert PAPER_PRIORS.std[F] == 0.071 and PAPER_PRIORS.std[M] == 0.076
    assert PAPER_PRIORS.mean == OFFICIAL_PRIORS.mean


def test_adult_prior_modes():
    cls = [B, K, T, F, M, N]
    h = np.array([1.0, 1.3, 1.5, 1.6, 1.7, 1.8])
    cdc_mu, cdc_sd = height_prior(cls, h, adult="cdc", table=OFFICIAL_PRIORS)
    np.testing.assert_array_equal(cdc_mu, OFFICIAL_PRIORS.mean)
    np.testing.assert_array_equal(cdc_sd, OFFICIAL_PRIORS.std)
    mu, sd = height_prior(cls, h, adult="hybrid", table=OFFICIAL_PRIORS)
    np.testing.assert_allclose(
        mu, [0.801, 1.122, 1.477, (1.6 + 1.647) / 2, (1.7 + 1.784) / 2, 1.7575]
    )
    np.testing.assert_array_equal(sd, OFFICIAL_PRIORS.std)
    mu, sd = height_prior(cls, h, adult="gender_agnostic", table=OFFICIAL_PRIORS)
    np.testing.assert_allclose(mu, [0.801, 1.122, 1.477, 1.6, 1.7, 1.8])
    np.testing.assert_allclose(sd, [0.126, 0.120, 0.156, 0.073, 0.073, 0.073])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: prior_class([30.0, np.nan], [0.5, 0.5]), r"age\[1\] = nan"),
        (lambda: prior_class([30.0], [1.2]), r"p_male\[0\] = 1.2 is outside"),
        (lambda: prior_class([30.0, 20.0], [0.5]), "same length"),
        (lambda: height_prior([0, 7], [1.0, 1.0]), r"prior_cls\[1\] = 7"),
        (lambda: height_prior([0], [1.0], adult="tall"), "adult prior"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
