"""core.crop's roll: the crop square turns with the eye line (roll "eyes"), so a tilted head gives the
crop of the upright one. The page's twin (crop.js) is checked against this code in tests/test_browser.py."""

import dataclasses
import math

import numpy as np
import pytest

from core.crop import DEFAULT, CropContract, crop

KEEP = dataclasses.replace(DEFAULT, roll="keep")


def _face_frame(angle_deg: float = 0.0):
    """A 320x240 RGB frame with a smooth face-like pattern (two dark eyes, a mouth) centred at (160, 120),
    turned by `angle_deg` (clockwise on screen, y down), its box and its eye key points turned with it."""
    import cv2

    frame = np.full((240, 320, 3), 150, np.uint8)
    cv2.ellipse(frame, (160, 125), (55, 70), 0, 0, 360, (210, 190, 170), -1)
    for x in (138, 182):
        cv2.circle(frame, (x, 108), 9, (30, 30, 30), -1)
    cv2.ellipse(frame, (160, 155), (22, 9), 0, 0, 360, (90, 40, 40), -1)
    frame = cv2.GaussianBlur(frame, (0, 0), 1.5)
    eyes = np.array([[138.0, 108.0], [182.0, 108.0]])
    if angle_deg:
        rot = cv2.getRotationMatrix2D((160.0, 120.0), -angle_deg, 1.0)
        frame = cv2.warpAffine(frame, rot, (320, 240), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        eyes = eyes @ rot[:, :2].T + rot[:, 2]
    return frame, (100.0, 60.0, 120.0, 120.0), eyes


def test_level_eyes_and_no_key_points_give_the_upright_crop():
    """With the eyes level (or no key points) the turned crop is the upright one: the two-step resampling
    (a grid at twice the size, then four samples per pixel) lands on the grid's own pixels."""
    frame, box, eyes = _face_frame()
    upright = crop(frame, box, KEEP).astype(int)
    for kp in (None, eyes):
        diff = np.abs(crop(frame, box, DEFAULT, kp).astype(int) - upright)
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01


@pytest.mark.parametrize("angle", [-30.0, 15.0, 40.0])
def test_a_turned_head_gives_the_crop_of_the_upright_one(angle):
    """A head turned by `angle` and cropped along its eye line matches the upright head's crop far better
    than the upright square does (the residue is the interpolation of the turned frame)."""
    frame0, box, eyes0 = _face_frame()
    frame, _, eyes = _face_frame(angle)
    ref = crop(frame0, box, DEFAULT, eyes0).astype(float)
    turned = np.abs(crop(frame, box, DEFAULT, eyes).astype(float) - ref).mean()
    kept = np.abs(crop(frame, box, KEEP).astype(float) - ref).mean()
    assert turned < 2.0, turned
    assert kept > 3 * turned, (kept, turned)


def test_the_shift_moves_along_the_faces_own_down():
    """shift moves the centre along (-s, c): for eyes turned 90 deg (the face lying on its side) it moves left."""
    c = dataclasses.replace(DEFAULT, shift=-0.1)
    cx, cy, side, cos, sin = c.turned_square(0, 0, 100, 100, [[50.0, 40.0], [50.0, 60.0]])
    assert (cos, sin) == (0.0, 1.0)
    assert math.isclose(cx, 50 + 10) and math.isclose(cy, 50) and math.isclose(side, 100 * c.scale)
    cx, cy, *_ = c.turned_square(0, 0, 100, 100, [[40.0, 50.0], [60.0, 50.0]])
    assert (cx, cy) == (50.0, 40.0)


def test_a_contract_without_roll_is_an_older_one_that_keeps_the_square_upright():
    assert CropContract.from_dict({"scale": 1.2}).roll == "keep"
    assert CropContract.from_dict(DEFAULT.to_dict()) == DEFAULT
    assert CropContract().roll == "eyes"
    with pytest.raises(ValueError, match="roll 'tilt'"):
        CropContract(roll="tilt")


def test_luma_table_stretches_video_range():
    from core.crop import luma_table

    limited, full = luma_table(), luma_table(full_range=True)
    assert limited[16] == 0 and limited[235] == 255 and limited[0] == 0 and limited[255] == 255
    assert limited[126] == 128 and np.all(np.diff(limited.astype(int)) >= 0)
    assert np.array_equal(full, np.arange(256))
