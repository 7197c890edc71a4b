"""Face geometry (core.face_geometry), the cues that rank emoji by it (mobile_demo.live_cues) and the live emoji
(mobile_demo.live_emoji), on synthetic meshes (tests/face_meshes.py): no model needed."""

from __future__ import annotations

import numpy as np
import pytest
from face_meshes import face, place

from core import face_geometry as fg
from mobile_demo import live_cues, live_emoji


def coeffs(**moves):
    pose = {k: moves.pop(k) for k in ("roll", "yaw", "pitch", "scale", "cx", "cy") if k in moves}
    neutral = fg.measure(place(face()))
    return fg.coefficients(fg.measure(place(face(**moves), **pose)), neutral)


def test_neutral_face_is_neutral():
    k = coeffs()
    assert k["eye_open_left"] == k["eye_open_right"] == 1.0
    assert k["mouth_width"] == pytest.approx(0.5)
    for name in ("jaw_open", "smile_left", "smile_right", "pucker", "brow_inner_up", "brow_outer_up_left",
                 "brow_outer_up_right", "brow_down", "yaw", "pitch", "roll"):
        assert k[name] == pytest.approx(0.0, abs=1e-9), name
    # Without a calibration: the typical neutral face (DEFAULT_NEUTRAL), measured on real meshes, is near ours.
    d = fg.face_coefficients(place(face()))
    assert d["eye_open_left"] == 1.0 and d["jaw_open"] < 0.05 and d["smile_left"] < 0.2 and d["pucker"] < 0.1
    assert set(d) == set(fg.COEFFICIENTS)


@pytest.mark.parametrize("pose", [dict(cx=100.5, cy=400.25), dict(scale=37.0), dict(scale=260.0), dict(roll=30.0),
                                  dict(roll=-75.0, scale=55.0, cx=10.0, cy=-20.0)])
def test_coefficients_do_not_change_with_position_size_and_roll(pose):
    moves = dict(close_left=0.8, brow_right=0.05, open_mouth=0.2, smile=0.04)
    base = coeffs(**moves)
    moved = coeffs(**moves, **pose)
    for name in fg.COEFFICIENTS:
        expected = base[name] + (pose.get("roll", 0.0) if name == "roll" else 0.0)
        assert moved[name] == pytest.approx(expected, abs=1e-9), name


def test_head_angles_are_measured():
    m = fg.measure(place(face(), yaw=25, pitch=-12, roll=18))
    assert (m["yaw"], m["pitch"], m["roll"]) == pytest.approx((25, -12, 18), abs=1e-9)
    # A turned head keeps its expression (the face's own 3D frame).
    k = coeffs(close_right=1.0, yaw=25, pitch=-12)
    assert k["eye_open_right"] == 0.0 and k["eye_open_left"] == 1.0 and k["jaw_open"] == pytest.approx(0.0, abs=1e-9)


def test_a_wink_is_one_eye_and_a_blink_both():
    wink = coeffs(close_left=1.0)
    assert wink["eye_open_left"] == 0.0 and wink["eye_open_right"] == 1.0
    wink_r = coeffs(close_right=1.0)
    assert wink_r["eye_open_right"] == 0.0 and wink_r["eye_open_left"] == 1.0
    blink = coeffs(close_left=1.0, close_right=1.0)
    assert blink["eye_open_left"] == blink["eye_open_right"] == 0.0
    half = coeffs(close_left=0.5)
    assert 0.2 < half["eye_open_left"] < 0.9


def test_mouth_and_brow_coefficients_move_their_way():
    assert coeffs(open_mouth=0.5)["jaw_open"] == 1.0
    assert 0.3 < coeffs(open_mouth=0.2)["jaw_open"] < 0.6
    p = coeffs(pucker=0.25)
    assert p["pucker"] == pytest.approx(1.0) and p["mouth_width"] == pytest.approx(0.0)
    s = coeffs(smile=0.12)
    assert s["smile_left"] == 1.0 and s["smile_right"] == 1.0 and s["mouth_width"] > 0.5
    b = coeffs(brow_left=0.1)
    assert b["brow_outer_up_left"] == pytest.approx(1.0) and b["brow_outer_up_right"] == 0.0
    assert coeffs(brows_inner=0.1)["brow_inner_up"] == pytest.approx(1.0)
    f = coeffs(frown=0.06)
    assert f["brow_down"] > 0.5 and f["brow_inner_up"] == 0.0


def test_calibration_takes_the_median_of_two_seconds():
    cal = fg.Calibration(seconds=2.0)
    neutral = fg.measure(place(face()))
    blink = fg.measure(place(face(close_left=1.0, close_right=1.0)))
    for i in range(60):  # 30 fps, a blink in three frames
        ready = cal.add(blink if i in (10, 11, 12) else neutral, i / 30)
        assert ready == (i >= 60 * 2 / 2 and i / 30 >= 2.0)
    assert not fg.Calibration().add(neutral, 0.0)
    n = cal.neutral()
    assert n["eye_left"] == pytest.approx(neutral["eye_left"]) and set(n) == set(fg.MEASURES)
    with pytest.raises(ValueError):
        fg.Calibration().neutral()
    assert fg.median([3, 1, 2]) == 2 and fg.median([4, 1, 3, 2]) == 2.5


def test_one_euro_filter_cuts_jitter_and_follows_a_step():
    rng = np.random.default_rng(0)
    t = np.arange(120) / 30.0
    noisy = 0.5 + rng.normal(0, 0.03, t.size)
    f = fg.OneEuroFilter(*fg.FILTER_COEFFICIENTS, fg.D_CUTOFF)
    out = np.array([f(x, ti) for x, ti in zip(noisy, t)])
    assert np.std(np.diff(out[10:])) < 0.35 * np.std(np.diff(noisy[10:]))  # far less jitter
    f.reset()
    step = np.where(t < 1.0, 0.0, 1.0)
    out = np.array([f(x, ti) for x, ti in zip(step, t)])
    after = out[t >= 1.0]
    assert after[2] > 0.8 and after[5] > 0.95  # within ~3 frames (0.1 s) of a blink-fast step
    assert f(0.3, t[-1]) == out[-1]  # the same time again: the last value
    angles = fg.CoefficientFilter()
    k = angles(coeffs(), 0.0)
    assert set(k) == set(fg.COEFFICIENTS) and angles(coeffs(roll=20.0), 1 / 30)["roll"] < 20.0


# --- cues ----------------------------------------------------------------------------------------------------

NEUTRAL_PROBS = np.array([0.02, 0.01, 0.02, 0.05, 0.8, 0.07, 0.03])
HAPPY_PROBS = np.array([0.01, 0.0, 0.01, 0.9, 0.06, 0.01, 0.01])


@pytest.mark.parametrize("moves, expected", [
    (dict(close_left=1.0), {"😉"}),
    (dict(close_right=1.0), {"😉"}),
    (dict(close_left=1.0, close_right=1.0), {"😌", "😴"}),
    (dict(brow_left=0.1), {"🤨"}),
    (dict(brow_right=0.1), {"🤨"}),
    (dict(pucker=0.25), {"😗", "😘"}),
    (dict(open_mouth=0.7), {"😮", "😱"}),
    (dict(roll=25.0), {"🤔"}),
])
@pytest.mark.parametrize("probs", [NEUTRAL_PROBS, HAPPY_PROBS])
def test_each_cue_puts_its_emoji_on_top(moves, expected, probs):
    top = live_cues.rank_live(probs, coeffs(**moves), k=3)
    assert top[0][0] in expected, (moves, top)


def test_without_cues_the_ranking_is_the_tables():
    from mobile_demo.emoji_table import load_table

    table = load_table()
    assert "😉" in table.chars
    for face_coeffs in (coeffs(), None):
        assert live_cues.rank_live(HAPPY_PROBS, face_coeffs, k=5) == table.rank(HAPPY_PROBS, 5)
    assert all(v == 0.0 for v in live_cues.cue_strengths(coeffs()).values())
    assert live_cues.rank_live(None, coeffs(close_left=1.0), k=1)[0][0] == "😉"  # no classifier: the face alone
    closed = live_cues.rank_live(HAPPY_PROBS, coeffs(close_left=1.0, close_right=1.0), k=2)
    sleepy = live_cues.rank_live(NEUTRAL_PROBS, coeffs(close_left=1.0, close_right=1.0), k=2)
    assert closed[0][0] == "😌" and sleepy[0][0] == "😴"  # the classifier picks between a cue's emoji


# --- the live emoji ------------------------------------------------------------------------------------------

def test_live_emoji_is_a_yellow_disc_on_transparency_that_moves_with_the_face():
    im = live_emoji.draw_live_emoji(coeffs(), 96)
    assert im.shape == (96, 96, 4) and im.dtype == np.uint8
    assert im[0, 0, 3] == 0 and im[48, 8, 3] == 255 and tuple(im[48, 10, :3]) == live_emoji.FACE[:3]
    assert 0 < im[48, 3, 3] < 255 or 0 < im[48, 4, 3] < 255  # an anti-aliased edge
    dark = (im[:, :, 3] > 0) & (im[:, :, 0] < 150)

    def dark_in(img, rows, cols):
        return int(((img[:, :, 3] > 0) & (img[:, :, 0] < 150))[rows, cols].sum())

    eyes = (slice(36, 52), slice(25, 38))  # the image's left eye: the subject's right
    wink = live_emoji.draw_live_emoji(coeffs(close_right=1.0), 96)
    assert dark_in(wink, *eyes) < 0.5 * dark_in(im, *eyes)
    assert dark_in(wink, 36, slice(58, 72)) == dark_in(im, 36, slice(58, 72))  # the other eye stays open
    mouth = (slice(55, 90), slice(25, 71))
    assert dark_in(live_emoji.draw_live_emoji(coeffs(open_mouth=0.5), 96), *mouth) > 3 * dark_in(im, *mouth)
    tilted = live_emoji.draw_live_emoji(coeffs(roll=30.0), 96)
    assert not np.array_equal(tilted, im) and dark.sum() > 0
    assert live_emoji.draw_live_emoji({}, 1).shape == (1, 1, 4)


def test_live_emoji_box_covers_the_face():
    lm = place(face(), cx=300, cy=200, scale=80, roll=20)
    x0, y0, x1, y1 = live_emoji.live_emoji_box(lm)
    assert x1 - x0 == y1 - y0 and 200 < x1 - x0 < 400
    assert abs((x0 + x1) / 2 - 300) < 40 and abs((y0 + y1) / 2 - 200 - 0.4 * 80) < 40
