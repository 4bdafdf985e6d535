"""The annotated picture: readable at any photo size, one face's text clear of another's."""
import cv2
import numpy as np

from features.app.annotation import annotate, block_top, face_lines
from features.vision.images import load_image
from conftest import LFW, WILD_DEV

GOOD = {"quality": {"status": "ok", "failed": [], "reasons": []}}


def face(box, *, labels=("hat",), **extra):
    return {"box": box, "scores": {"hat": 0.91, "beard": 0.12, "eyewear": 0.03},
            "score_texts": {"hat": "0.91", "beard": "0.12", "eyewear": "0.03"}, "labels": list(labels),
            "types": {"hat": {"cap": 0.8, "brimmed": 0.2}, "hat_colour": "white"},
            "recommendations": [{"name": "White trucker cap", "category": "hat"}], **GOOD, **extra}


def drawn_share(image, faces):
    """Share of the annotated picture's pixels the drawing changed."""
    return np.mean(np.any(annotate(image, faces) != image, axis=2))


def test_drawing_grows_with_the_photo():
    """A 6,000-px photo shown whole on a screen reads like a 1,000-px one: the boxes and text
    cover about the same share of it, not a 6x smaller one."""
    photo = load_image(LFW / "Fred_Funk_0002.jpg")
    small = cv2.resize(photo, (1000, 1000), interpolation=cv2.INTER_CUBIC)
    large = cv2.resize(photo, (6000, 6000), interpolation=cv2.INTER_CUBIC)
    box = (280, 250, 720, 700)
    small_share = drawn_share(small, [face(box)])
    large_share = drawn_share(large, [face(tuple(6 * v for v in box))])
    assert small_share > 0.01
    assert 0.6 < large_share / small_share < 1.6


def test_the_input_is_left_unchanged():
    photo = load_image(LFW / "Fred_Funk_0002.jpg")
    before = photo.copy()
    annotate(photo, [face((60, 60, 180, 190))])
    assert np.array_equal(photo, before)


def test_text_blocks_of_neighbouring_faces_do_not_overlap():
    taken = [(0, 100, 300, 150)]  # a block under the first face
    # a second face's block wants the same place under its box: it is moved clear of the first
    y = block_top(200, 250, 50, (110, 20), taken, 500)
    assert y == 20  # over its box, the second choice, is clear
    y = block_top(200, 250, 50, (110, -40), taken, 500)  # no room over the box either
    assert y >= 150 and y + 50 <= 500


def test_faces_side_by_side_get_separate_text():
    """Two faces whose text would fall on the same rows: the second's is drawn elsewhere, so
    the first's text is still there as it was (text may cover another face's box)."""
    photo = load_image(LFW / "Thaksin_Shinawatra_0005.jpg")
    first, second = face((40, 60, 120, 150)), face((110, 70, 200, 148), labels=("hat", "beard"))
    alone = annotate(photo, [first])
    both = annotate(photo, [first, second])
    plain = cv2.resize(photo, alone.shape[1::-1], interpolation=cv2.INTER_CUBIC)
    drawn = np.any(alone != plain, axis=2)
    drawn[:2 * 150 + 2] = False  # the first's text, under its box (the photo is drawn at 2x)
    assert drawn.sum() > 2000 and np.any(both != alone)
    assert np.array_equal(both[drawn], alone[drawn])


def test_a_face_not_judged_says_why_in_short():
    lines = face_lines(1, {**face((0, 0, 10, 10), labels=()), "types": {}, "recommendations": [],
                           "quality": {"status": "uncertain",
                                       "failed": ["blurred", "cut_off"],
                                       "reasons": ["blurred (sharpness 8, under 60)", "cut by the photo's edge"]}})
    assert lines[-1] == "not judged: blurred, cut off"
    assert face_lines(2, face((0, 0, 10, 10)))[-1] == "-> White trucker cap"


def test_a_product_name_beyond_ascii_is_drawn_without_question_marks_for_its_letters():
    """OpenCV's fonts draw ASCII only: "Casquette été" was drawn "Casquette ??t??"."""
    named = face((0, 0, 10, 10), recommendations=[{"name": "Casquette été ★", "category": "hat"}])
    assert face_lines(1, named)[-1] == "-> Casquette ete ?"
    assert face_lines(1, face((0, 0, 10, 10)))[-1] == "-> White trucker cap"


def test_the_type_line_names_the_most_probable_type_whatever_the_key_order():
    """The picture named the first key of each family: a record whose keys came back sorted
    (through JSON) read "brimmed 0.20" for a cap at 0.80."""
    sorted_keys = face((0, 0, 10, 10), labels=("hat", "beard"),
                       types={"hat": {"brimmed": 0.2, "cap": 0.8}, "hat_colour": "white",
                              "beard": {"full_beard": 0.1, "goatee": 0.7, "moustache": 0.4}})
    assert "white cap 0.80, goatee 0.70" in face_lines(1, sorted_keys)
    full = face((0, 0, 10, 10), labels=("beard",), types={"beard": {"full_beard": 0.9, "goatee": 0.2}})
    assert "full beard 0.90" in face_lines(1, full)  # in words, as the text output and the page
    # each type says its family, as a reason does ("dark 0.93", "black brimmed 0.64" did not)
    every = face((0, 0, 10, 10), labels=("eyewear", "hat"),
                 types={"eyewear": {"clear": 0.07, "dark": 0.93}, "hat": {"brimmed": 0.64, "other": 0.36},
                        "hat_colour": "black"})
    assert "dark sunglasses 0.93, black brimmed hat 0.64" in face_lines(1, every)
    # a style under the bar it is seen at (labels.STYLE_SEEN) does not read as on it
    under = face((0, 0, 10, 10), labels=("beard",), types={"beard": {"goatee": 0.499, "stubble": 0.2}})
    assert "goatee 0.499" in face_lines(1, under)
    colour_only = face((0, 0, 10, 10), labels=("hat",), types={"hat_colour": "navy"})  # no headwear type model
    assert "navy" in face_lines(1, colour_only)


def test_a_panorama_wider_than_a_jpeg_gets_its_copy(tmp_path):
    """A 70,000-px-wide photo (a stitched panorama) is accepted, but its copy could not be a
    JPEG: OpenCV logged its own error and the copy was lost."""
    from features.app.annotation import MAX_SIDE, save_rgb

    panorama = np.full((300, 70_000, 3), 128, np.uint8)
    copy = annotate(panorama, [face((35_000, 100, 35_100, 200))])
    assert copy.shape == (round(300 * MAX_SIDE / 70_000), MAX_SIDE, 3) and panorama.max() == 128
    # its text as a 300-px photo's, not grown with the width: it was 652 px tall on 281
    drawn = np.flatnonzero(np.any(copy != 128, axis=(0, 2)))
    assert drawn.max() - drawn.min() < 1000
    save_rgb(tmp_path / "panorama.jpg", copy)
    assert cv2.imread(str(tmp_path / "panorama.jpg")).shape == copy.shape


def test_a_caption_is_not_drawn_over_another_face():
    """The caption under a face was drawn across the face below it (a crowd's photo: one face's
    text over another's forehead and glasses); it goes above its face when that is clear."""
    grey = np.full((500, 500, 3), 128, np.uint8)
    upper, lower = (200, 150, 300, 250), (200, 262, 300, 362)  # the lower one just under the upper
    drawn = annotate(grey, [face(upper), face(lower)])
    left, top, right, bottom = lower
    inside = drawn[top + 4:bottom - 4, left + 4:right - 4]
    assert not (inside == 0).all(axis=2).any()  # no caption's black ground on the lower face
    assert (drawn[:upper[1]] == 0).all(axis=2).any()  # the upper face's caption: above it


def test_a_crowd_s_captions_go_to_a_legend_under_the_photo_its_faces_numbered():
    """Sixteen faces close together: captions pushed down past each other were read as other
    people's (a bare-headed boy given the red cap of the man above him), so every face is
    numbered on the photo and its caption is in a legend under it."""
    photo = load_image(LFW / "Thaksin_Shinawatra_0005.jpg")
    boxes = [(10 + 60 * column, 10 + 60 * row, 60 + 60 * column, 60 + 60 * row) for row in range(4) for column in range(4)]
    drawn = annotate(photo, [face(box) for box in boxes])
    scaled = cv2.resize(photo, (500, 500), interpolation=cv2.INTER_CUBIC)
    assert drawn.shape[1] == 500 and drawn.shape[0] > 500  # the photo (drawn at 2x), then its legend
    legend = drawn[500:]
    assert (legend == 48).all(axis=2).mean() > 0.3 and (legend == 255).all(axis=2).any()  # its ground, white text
    for left, top, right, bottom in ((2 * v for v in box) for box in boxes):  # no caption's black ground on a face
        inside = drawn[top + 20:bottom - 4, left + 4:right - 4]
        assert np.array_equal(inside, scaled[top + 20:bottom - 4, left + 4:right - 4])
    # two faces far apart keep their captions beside them, and the photo its size
    assert annotate(photo, [face((10, 10, 60, 60)), face((180, 150, 240, 210))]).shape == (500, 500, 3)


def test_a_face_shows_the_first_product_of_each_category():
    """Only the first product was drawn: a face with hat, eyewear and beard products showed its
    reading glasses alone."""
    products = [{"name": "Blue-light reading glasses", "category": "eyewear"}, {"name": "Clear frames", "category": "eyewear"},
                {"name": "Classic black baseball cap", "category": "hat"}, {"name": "Navy cap", "category": "hat"},
                {"name": "Beard and moustache balm", "category": "beard"}]
    lines = face_lines(1, face((0, 0, 10, 10), labels=("eyewear", "hat", "beard"), recommendations=products))
    assert lines[-3:] == ["-> Blue-light reading glasses", "-> Classic black baseball cap", "-> Beard and moustache balm"]


def test_a_photo_without_a_face_says_so():
    """Its copy was the photo as it was, which reads as a photo not looked at."""
    grey = np.full((400, 600, 3), 128, np.uint8)
    drawn = annotate(grey, [])
    assert drawn.shape == grey.shape
    changed = np.argwhere(np.any(drawn != 128, axis=2))
    assert len(changed) and changed[:, 0].max() < 40 and changed[:, 1].max() < 200  # a line at the top left


def test_a_legend_s_numbers_keep_off_each_other_and_the_other_faces():
    """The numbers were drawn over each box's top whatever was there: a grid of small faces
    came out as a block of "####"."""
    from features.app.annotation import clear, tag_places

    boxes = [(20 + 60 * column, 30 + 60 * row, 60 + 60 * column, 70 + 60 * row) for row in range(5) for column in range(5)]
    places = tag_places((400, 400, 3), boxes, [(24, 16)] * len(boxes))
    tags = [(x, y, x + 24, y + 16) for x, y in places]
    for number, tag in enumerate(tags):
        assert clear(tag, tags[:number] + tags[number + 1:])
        assert clear(tag, boxes[:number] + boxes[number + 1:])


def test_a_crowd_s_numbers_find_room_near_their_own_faces():
    """wild-dev's s3fd_test2.jpg, 84 faces found: each number went over, under or inside the
    top of its box, and where none of those was clear it was drawn over another anyway (9
    numbers on others, "#67" over "#63"); now each looks around its box, within
    :data:`TAG_REACH` of its heights, first."""
    from features.app.annotation import TAG_REACH, Text, clear, tag_places
    from features.vision.faces import detect_faces

    image = load_image(WILD_DEV / "s3fd_test2.jpg")
    boxes = [found.box for found in detect_faces(image)]
    text = Text.for_canvas(image.shape)  # annotate's, for a photo this large (drawn at its size)
    sizes = [text.block([f"#{number}"]) for number in range(1, len(boxes) + 1)]
    places = tag_places(image.shape, boxes, sizes)
    tags = [(x, y, x + width, y + height) for (x, y), (width, height) in zip(places, sizes)]
    assert len(boxes) > 80 and all(clear(tag, tags[:number] + tags[number + 1:]) for number, tag in enumerate(tags))
    assert sum(not clear(tag, boxes[:number] + boxes[number + 1:]) for number, tag in enumerate(tags)) <= 1
    for (left, top, right, bottom), tag, (_, height) in zip(boxes, tags, sizes):  # beside its own face
        assert max(left - tag[2], tag[0] - right, top - tag[3], tag[1] - bottom) <= TAG_REACH * height


def test_a_legend_wider_than_a_narrow_photo_pads_the_photo_and_a_tall_one_stays_a_jpeg(tmp_path):
    """On a 60-px-wide photo the legend was cut at the photo's width ("-> Whit"); under a
    65,500-px photo it took the copy past JPEG's limit, which OpenCV refused to write."""
    from features.app.annotation import MAX_SIDE, save_rgb

    narrow = np.full((400, 60, 3), 128, np.uint8)
    drawn = annotate(narrow, [face((5, 100, 55, 150))])
    assert drawn.shape[1] > 500 * 60 / 400 + 100  # the photo, enlarged to 500 px tall, then padded
    assert (drawn[:500, 80:] == 48).all()  # the padding: the legend's ground
    tall = np.full((MAX_SIDE, 40, 3), 128, np.uint8)
    drawn = annotate(tall, [face((5, 100, 35, 130))])
    assert max(drawn.shape[:2]) <= MAX_SIDE
    save_rgb(tmp_path / "tall.jpg", drawn)
    assert cv2.imread(str(tmp_path / "tall.jpg")).shape == drawn.shape
