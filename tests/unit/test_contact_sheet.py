"""Contact sheet and animation of a session folder, from synthetic sessions (PNGs + sidecars)."""
import hashlib
import json
import os

import pytest
from PIL import Image

from prompt_media_pkg.core import atomic
from prompt_media_pkg.core import contact_sheet as cs
from prompt_media_pkg.core.paths import PathError
from prompt_media_pkg.core.session import session_folder_path
from prompt_media_pkg.tests.synthetic_session import write_session

PROMPTS = ["a lighthouse on a cliff at dawn", "portrait of an old fisherman", "a bowl of fruit"]
STYLES = [{"style": "oil painting", "light": "dawn"}, {"style": "watercolor", "light": "dawn"},
          {"style": "ink", "light": "dawn"}, {"style": "pastel", "light": "dawn"}]
SMALL = dict(cell_size=64, border=4, row_spacing=6, font_size=12)


def plan_for(folder, **options):
    images, _ = cs.scan_session(str(folder))
    return cs.plan_sheet(images, header=cs.session_header(str(folder), images), **options)


def centre(box):
    x, y, w, h = box
    return x + w // 2, y + h // 2


def close(a, b, tol=0):
    return all(abs(p - q) <= tol for p, q in zip(a, b))


def cells_by_name(plan):
    return {(i, c.image.name): c for i, p in enumerate(plan.pages) for c in p.cells if c.image}


def folder_digest(folder, keep=lambda n: n.endswith((".json",)) or "_seed_" in n):
    return {n: hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest()
            for n in sorted(os.listdir(folder)) if keep(n)}


def text_pixels(sheet, box):
    """How many pixels inside box differ from the background (text was drawn there)."""
    data = sheet.crop(box).convert("RGB").tobytes()
    return sum(1 for i in range(0, len(data), 3) if not close(data[i:i + 3], cs.BACKGROUND, 8))


# ----------------------------------------------------------------------------- layout

def test_each_image_lands_in_its_seed_prompt_variation_cell(tmp_path):
    jobs = write_session(str(tmp_path), [11, 22], PROMPTS, STYLES)
    result = cs.compose_session(str(tmp_path), sheet_format="png", **SMALL)
    assert result.images == 24 and result.pages == 1 and not result.skipped
    assert result.sheets == [str(tmp_path / "contact_sheet.png")]
    sheet = Image.open(result.sheets[0]).convert("RGB")
    plan = plan_for(tmp_path, **SMALL)
    cells = {(c.seed_index, c.prompt_index, c.variation_index): c for c in plan.pages[0].cells}
    assert len(cells) == 24
    for job in jobs:
        cell = cells[(job["seed_index"], job["prompt_index"], job["variation_index"])]
        assert cell.image.name == job["name"]
        assert sheet.getpixel(centre(cell.box)) == job["colour"], job["name"]
    # geometry: variations left to right, prompts top to bottom, second seed below the first
    for s in range(2):
        for p in range(3):
            xs = [cells[(s, p, v)].box[0] for v in range(4)]
            ys = {cells[(s, p, v)].box[1] for v in range(4)}
            assert xs == sorted(xs) and len(set(xs)) == 4 and len(ys) == 1
        row_tops = [cells[(s, p, 0)].box[1] for p in range(3)]
        assert row_tops == sorted(row_tops) and len(set(row_tops)) == 3
    assert cells[(1, 0, 0)].box[1] > cells[(0, 2, 0)].box[1]
    assert [g.title for g in result.grids] == ["seed 11", "seed 22"]
    assert [(g.prompt_indexes, g.columns) for g in result.grids] == [((0, 1, 2), 4)] * 2


def test_sidecar_order_decides_placement_not_file_names(tmp_path):
    # counts are handed out in reverse job order: 001 is the last grid cell
    jobs = write_session(str(tmp_path), [5], PROMPTS[:2], STYLES[:3], order=lambda js: js[::-1])
    result = cs.compose_session(str(tmp_path), sheet_format="png", **SMALL)
    sheet = Image.open(result.sheets[0]).convert("RGB")
    cells = {(c.prompt_index, c.variation_index): c for c in plan_for(tmp_path, **SMALL).pages[0].cells}
    assert cells[(1, 2)].image.name == "001_seed_5.png"
    for job in jobs:
        assert sheet.getpixel(centre(cells[(job["prompt_index"], job["variation_index"])].box)) == job["colour"]


def test_labels_rows_are_base_prompts_and_columns_only_the_values_that_differ(tmp_path):
    tmp_path = tmp_path / "2025" / "10" / "12" / "1430"
    write_session(str(tmp_path), [7], PROMPTS, STYLES)
    result = cs.compose_session(str(tmp_path), sheet_format="png", **SMALL)
    grid = result.grids[0]
    assert grid.column_labels == ("oil painting", "watercolor", "ink", "pastel")   # 'dawn' is constant
    plan = plan_for(tmp_path, **SMALL)
    texts = [t.text for t in plan.pages[0].texts]
    header = cs.session_header(str(tmp_path), cs.scan_session(str(tmp_path))[0])
    assert header == "2025-10-12 14:30 · prompt.yaml · 12 images"
    assert texts[0] == header or (texts[0].endswith("…") and header.startswith(texts[0][:-1]))
    assert "seed 7" in texts
    for i, prompt in enumerate(PROMPTS, start=1):
        assert any(t.startswith(f"{i}. ") and prompt.startswith(t[len(f'{i}. '):].rstrip('…')[:10])
                   for t in texts), prompt
    # the labels are really drawn: text pixels above the first row's cells and above row 2
    sheet = Image.open(result.sheets[0]).convert("RGB")
    cells = {(c.prompt_index, c.variation_index): c for c in plan.pages[0].cells}
    x, y, w, h = cells[(0, 1)].box
    assert text_pixels(sheet, (x, y - 40, x + w, y - 2)) > 20          # column label + row label
    x, y, w, h = cells[(1, 0)].box
    assert text_pixels(sheet, (x, y - 14, x + w, y - 1)) > 20          # "2. portrait of ..."
    assert text_pixels(sheet, (x + 4, y + 4, x + w - 4, y + h - 4)) > 0   # cell is the image
    assert not any(t.text for t in plan.pages[0].texts if t.y > y + h and t.y < y + h + 1)


def test_long_prompts_are_shortened_to_the_sheet_width(tmp_path):
    long_prompt = "a very long prompt " * 40
    write_session(str(tmp_path), [1], [long_prompt], STYLES[:2])
    plan = plan_for(tmp_path, **SMALL)
    row_label = next(t.text for t in plan.pages[0].texts if t.text.startswith("1. "))
    assert row_label.endswith("…") and len(row_label) < len(long_prompt)
    font = cs.load_font(SMALL["font_size"])
    assert font.getlength(row_label) <= plan.pages[0].width - 2 * SMALL["border"]


def test_values_that_change_within_a_column_become_cell_captions(tmp_path):
    # 'mood' is drawn per prompt (random variation): not constant down a column
    jobs = write_session(str(tmp_path), [1], PROMPTS[:2], STYLES[:2])
    for job in jobs:
        path = tmp_path / job["name"].replace(".png", ".json")
        data = json.loads(path.read_text())
        data["oom"]["variation_values"]["mood"] = f"mood{job['prompt_index']}{job['variation_index']}"
        path.write_text(json.dumps(data))
    plan = plan_for(tmp_path, **SMALL)
    assert plan.grids[0].column_labels == ("oil painting", "watercolor")
    captions = sorted(t.text for t in plan.pages[0].texts if t.text.startswith("mood"))
    assert captions == ["mood00", "mood01", "mood10", "mood11"]


def test_single_column_session_has_no_column_header(tmp_path):
    write_session(str(tmp_path), [1, 2], PROMPTS, [{}])
    result = cs.compose_session(str(tmp_path), sheet_format="png", **SMALL)
    assert [g.column_labels for g in result.grids] == [("",), ("",)]
    assert [(g.prompt_indexes, g.columns) for g in result.grids] == [((0, 1, 2), 1)] * 2


def test_missing_grid_positions_are_empty_cells(tmp_path):
    jobs = write_session(str(tmp_path), [1], PROMPTS[:2], STYLES[:3])
    for n in (tmp_path / jobs[4]["name"], tmp_path / jobs[4]["name"].replace(".png", ".json")):
        n.unlink()                         # prompt 2, variation 2 not generated yet
    result = cs.compose_session(str(tmp_path), sheet_format="png", **SMALL)
    sheet = Image.open(result.sheets[0]).convert("RGB")
    cell = next(c for c in plan_for(tmp_path, **SMALL).pages[0].cells if (c.prompt_index, c.variation_index) == (1, 1))
    assert cell.image is None and sheet.getpixel(centre(cell.box)) == cs.EMPTY_CELL


def test_same_grid_position_twice_shows_the_newer_image_with_a_note(tmp_path):
    jobs = write_session(str(tmp_path), [1], PROMPTS[:1], STYLES[:2])
    data = json.loads((tmp_path / "001_seed_1.json").read_text())
    Image.new("RGB", (64, 64), (250, 10, 10)).save(tmp_path / "003_seed_1.png")
    data["task_id"] = 3
    (tmp_path / "003_seed_1.json").write_text(json.dumps(data))
    result = cs.compose_session(str(tmp_path), sheet_format="png", **SMALL)
    sheet = Image.open(result.sheets[0]).convert("RGB")
    cell = next(c for c in plan_for(tmp_path, **SMALL).pages[0].cells if c.variation_index == 0)
    assert cell.image.name == "003_seed_1.png" and sheet.getpixel(centre(cell.box)) == (250, 10, 10)
    assert any("001_seed_1.png and 003_seed_1.png" in n for n in result.notes)
    assert jobs


def test_too_many_columns_shrink_cells_then_wrap_into_bands(tmp_path):
    many = [{"n": f"v{i}"} for i in range(30)]
    write_session(str(tmp_path), [1], PROMPTS[:1], many, size=(32, 32))
    plan = plan_for(tmp_path, cell_size=64, border=2, max_width=1000)
    assert plan.cell_size[0] < 64 and all(p.width <= 1000 for p in plan.pages)
    assert len(plan.pages[0].cells) == 30 and any("do not fit" in n for n in plan.notes)
    narrow = plan_for(tmp_path, cell_size=64, border=2, max_width=400)
    assert narrow.cell_size == (cs.MIN_CELL_SIZE, cs.MIN_CELL_SIZE)
    cells = [c for p in narrow.pages for c in p.cells]
    assert sorted(c.variation_index for c in cells) == list(range(30))
    titles = [t.text for p in narrow.pages for t in p.texts if t.title]
    assert titles[0] == "seed 1 · variations 1-7" and len(titles) == 5
    assert all(p.width <= 400 for p in narrow.pages)


# ----------------------------------------------------------------------------- pages

def test_large_session_splits_into_numbered_pages_and_recomposes_cleanly(tmp_path):
    jobs = write_session(str(tmp_path), [1, 2, 3], PROMPTS, STYLES)
    result = cs.compose_session(str(tmp_path), sheet_format="png", max_height=400, **SMALL)
    assert result.pages > 2
    names = [os.path.basename(p) for p in result.sheets]
    assert names == [f"contact_sheet_{i:02d}.png" for i in range(1, result.pages + 1)]
    plan = plan_for(tmp_path, max_height=400, **SMALL)
    placed = cells_by_name(plan)
    assert sorted(n for _, n in placed) == sorted(j["name"] for j in jobs)      # each image once
    for (page_index, name), cell in placed.items():
        page = Image.open(result.sheets[page_index]).convert("RGB")
        assert page.getpixel(centre(cell.box)) == next(j["colour"] for j in jobs if j["name"] == name)
        assert page.height <= 400
    headers = [p.texts[0].text for p in plan.pages]
    assert headers[0].startswith(f"page 1/{result.pages} · ")
    assert any(t.text.endswith("(continued)") for p in plan.pages for t in p.texts) or \
        all(p.cells[0].prompt_index == 0 for p in plan.pages)
    # a new composition with fewer pages leaves no stale page behind
    again = cs.compose_session(str(tmp_path), sheet_format="png", max_height=800, **SMALL)
    assert 1 < again.pages < result.pages
    assert sorted(n for n in os.listdir(tmp_path) if n.startswith("contact_sheet")) == \
        [f"contact_sheet_{i:02d}.png" for i in range(1, again.pages + 1)]
    once = cs.compose_session(str(tmp_path), sheet_format="png", max_height=16000, **SMALL)
    assert once.pages == 1
    assert sorted(n for n in os.listdir(tmp_path) if n.startswith("contact_sheet")) == ["contact_sheet.png"]


def test_rows_of_one_seed_split_across_pages_repeat_the_block_title(tmp_path):
    write_session(str(tmp_path), [9], [f"prompt {i}" for i in range(8)], STYLES[:2])
    plan = plan_for(tmp_path, max_height=500, **{**SMALL, "cell_size": 128})
    assert len(plan.pages) > 1
    for page in plan.pages[1:]:
        assert any(t.title and t.text == "seed 9 (continued)" for t in page.texts)
    assert [c.prompt_index for p in plan.pages for c in p.cells][::2] == list(range(8))


# ----------------------------------------------------------------------------- foreign files

def test_foreign_and_broken_files_are_skipped_with_a_note(tmp_path):
    jobs = write_session(str(tmp_path), [1], PROMPTS[:2], STYLES[:2])
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "holiday.png")
    (tmp_path / "002_seed_1.json").write_text("{not json")
    data = json.loads((tmp_path / "003_seed_1.json").read_text())
    del data["oom"]["prompt_index"]
    (tmp_path / "003_seed_1.json").write_text(json.dumps(data))
    (tmp_path / "009_seed_1.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "prompt.yaml").write_text("prompts: [a]")
    before = folder_digest(tmp_path, keep=lambda n: True)
    result = cs.compose_session(str(tmp_path), sheet_format="png", animation=True, **SMALL)
    reasons = {s.name: s.reason for s in result.skipped}
    assert set(reasons) == {"holiday.png", "002_seed_1.png", "003_seed_1.png", "009_seed_1.json"}
    assert "no sidecar holiday.json" in reasons["holiday.png"]
    assert "002_seed_1.json: truncated or empty" in reasons["002_seed_1.png"]
    assert "oom.prompt_index" in reasons["003_seed_1.png"]
    assert "without its image" in reasons["009_seed_1.json"]
    assert result.images == 2 and "skipped holiday.png" in result.summary()
    placed = {c.image.name for c in plan_for(tmp_path, **SMALL).pages[0].cells if c.image}
    assert placed == {jobs[0]["name"], jobs[3]["name"]}
    after = folder_digest(tmp_path, keep=lambda n: n in before)
    assert after == before                                       # nothing of theirs touched
    assert Image.open(tmp_path / "session.webp").n_frames == 2


def test_own_outputs_are_not_session_images(tmp_path):
    write_session(str(tmp_path), [1], PROMPTS[:1], STYLES[:2])
    first = cs.compose_session(str(tmp_path), sheet_format="jpg,png", animation=True, **SMALL)
    assert first.written == [str(tmp_path / n) for n in ("contact_sheet.jpg", "contact_sheet.png", "session.webp")]
    again = cs.compose_session(str(tmp_path), sheet_format="png", **SMALL)
    assert again.skipped == [] and again.images == 2


def test_empty_folder_writes_nothing(tmp_path):
    result = cs.compose_session(str(tmp_path), animation=True)
    assert result.sheets == [] and result.animation is None and os.listdir(tmp_path) == []
    assert "nothing composed" in result.notes[0]


# ----------------------------------------------------------------------------- sizes

def test_mixed_sizes_are_letterboxed_not_stretched(tmp_path):
    sizes = {1: (64, 64), 2: (64, 32), 3: (32, 64), 4: (64, 64), 5: (256, 256)}
    jobs = write_session(str(tmp_path), [1], PROMPTS[:1], [{"n": str(i)} for i in range(5)],
                         sizes=lambda t: sizes[t])
    result = cs.compose_session(str(tmp_path), sheet_format="png", **SMALL)
    sheet = Image.open(result.sheets[0]).convert("RGB")
    cells = {c.variation_index: c for c in plan_for(tmp_path, **SMALL).pages[0].cells}
    assert cells[0].box[2:] == (64, 64)                                    # the common size's aspect
    x, y, w, h = cells[1].box                                              # wide: bars top and bottom
    assert sheet.getpixel((x + w // 2, y + 2)) == cs.LETTERBOX
    assert sheet.getpixel((x + w // 2, y + h - 3)) == cs.LETTERBOX
    assert sheet.getpixel((x + 2, y + h // 2)) == jobs[1]["colour"]        # full width: not squeezed
    x, y, w, h = cells[2].box                                              # tall: bars left and right
    assert sheet.getpixel((x + 2, y + h // 2)) == cs.LETTERBOX
    assert sheet.getpixel((x + w - 3, y + h // 2)) == cs.LETTERBOX
    assert sheet.getpixel((x + w // 2, y + 2)) == jobs[2]["colour"]
    x, y, w, h = cells[4].box                                              # larger, same aspect: fills
    assert sheet.getpixel((x + 1, y + 1)) == jobs[4]["colour"]


def test_transparent_images_are_flattened_onto_the_letterbox(tmp_path):
    write_session(str(tmp_path), [1], PROMPTS[:1], STYLES[:1],
                  image=lambda t, size: Image.new("RGBA", size, (255, 0, 0, 0)))
    result = cs.compose_session(str(tmp_path), sheet_format="png", **SMALL)
    cell = plan_for(tmp_path, **SMALL).pages[0].cells[0]
    assert Image.open(result.sheets[0]).convert("RGB").getpixel(centre(cell.box)) == cs.LETTERBOX


def test_fit_inside_keeps_aspect():
    assert cs.fit_inside((512, 256), (64, 64)) == (64, 32)
    assert cs.fit_inside((32, 64), (64, 64)) == (32, 64)
    assert cs.fit_inside((10, 1000), (64, 64)) == (1, 64)


# ----------------------------------------------------------------------------- animation

@pytest.mark.parametrize("fmt", ["webp", "gif"])
def test_animation_has_every_image_in_count_order(tmp_path, fmt):
    jobs = write_session(str(tmp_path), [1, 2], PROMPTS[:2], STYLES[:3], order=lambda js: js[::-1])
    result = cs.compose_session(str(tmp_path), sheet=False, animation=True, animation_format=fmt,
                                frame_ms=120, animation_size=48)
    assert result.sheets == [] and result.animation == str(tmp_path / f"session.{fmt}")
    by_count = sorted(jobs, key=lambda j: j["task_id"])
    with Image.open(result.animation) as anim:
        assert anim.n_frames == len(jobs) == 12 and anim.size == (48, 48)
        for i, job in enumerate(by_count):
            anim.seek(i)
            frame = anim.convert("RGB")
            assert close(frame.getpixel((24, 24)), job["colour"], tol=12), (i, job["name"])
            assert anim.info.get("duration") == 120
    assert not [n for n in os.listdir(tmp_path) if n.startswith("contact_sheet")]


def test_lazy_frames_render_one_frame_per_seek():
    rendered = []

    def render(i):
        rendered.append(i)
        return Image.new("RGB", (8, 8), (i * 20, 0, 0))

    frames = cs.LazyFrames(render, 3, (8, 8))
    assert frames.n_frames == 3 and rendered == [0]
    frames.seek(2)
    assert frames.getpixel((0, 0)) == (40, 0, 0) and rendered == [0, 2]
    with pytest.raises(EOFError):
        frames.seek(3)


# ----------------------------------------------------------------------------- writing

def test_writes_are_atomic_and_leave_no_temp_files(tmp_path, monkeypatch):
    write_session(str(tmp_path), [1], PROMPTS[:1], STYLES[:2])
    first = cs.compose_session(str(tmp_path), sheet_format="png", animation=True, **SMALL)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]
    assert oct(os.stat(first.sheets[0]).st_mode & 0o777) == oct(atomic.FILE_MODE)
    old = (tmp_path / "contact_sheet.png").read_bytes()

    def failing_save(self, fp, format=None, **params):
        fp.write(b"half a sheet")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        cs.compose_session(str(tmp_path), sheet_format="png", cell_size=32)
    assert (tmp_path / "contact_sheet.png").read_bytes() == old          # old sheet intact
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]     # temp file removed


def test_both_sheet_formats(tmp_path):
    write_session(str(tmp_path), [1], PROMPTS[:1], STYLES[:2])
    result = cs.compose_session(str(tmp_path), sheet_format="jpg+png", **SMALL)
    assert [os.path.basename(p) for p in result.sheets] == ["contact_sheet.jpg", "contact_sheet.png"]
    assert Image.open(result.sheets[0]).format == "JPEG" and Image.open(result.sheets[1]).format == "PNG"


@pytest.mark.parametrize("options, message", [
    ({"sheet_format": "tiff"}, "sheet_format 'tiff'"),
    ({"animation": True, "animation_format": "mp4"}, "animation_format 'mp4'"),
    ({"cell_size": 0}, "cell_size=0"),
    ({"max_width": 10**6}, "max_width"),
    ({"frame_ms": 1.5}, "frame_ms"),
])
def test_bad_options_are_refused_before_anything_is_written(tmp_path, options, message):
    write_session(str(tmp_path), [1], PROMPTS[:1], STYLES[:1])
    with pytest.raises(ValueError, match=message):
        cs.compose_session(str(tmp_path), **options)
    assert not [n for n in os.listdir(tmp_path) if "_seed_" not in n]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        cs.compose_session(str(tmp_path / "nope"))


# ----------------------------------------------------------------------------- session folders

def test_session_folder_path_stays_inside_the_output_directory(tmp_path):
    out = tmp_path / "output"
    session = out / "collections" / "images" / "2025" / "10" / "12" / "1430"
    session.mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", out / "link")
    assert session_folder_path(str(out), "collections/images/2025/10/12/1430") == str(session)
    assert session_folder_path(str(out), str(session)) == str(session)
    for bad, message in [("../elsewhere", r"'\.\.'"), (str(tmp_path / "elsewhere"), "outside"),
                         ("link", "outside"), ("", "no session folder"), ("collections/nope", "does not exist")]:
        with pytest.raises(PathError, match=message):
            session_folder_path(str(out), bad)


def test_fingerprint_changes_with_new_images_but_not_with_our_composites(tmp_path):
    write_session(str(tmp_path), [1], PROMPTS[:1], STYLES[:2])
    before = cs.session_fingerprint(str(tmp_path))
    cs.compose_session(str(tmp_path), sheet_format="jpg,png", animation=True, **SMALL)
    assert cs.session_fingerprint(str(tmp_path)) == before
    write_session(str(tmp_path / "more"), [1], PROMPTS[:1], STYLES[:1])
    os.replace(tmp_path / "more" / "001_seed_1.png", tmp_path / "003_seed_1.png")
    assert cs.session_fingerprint(str(tmp_path)) != before


def test_column_labels_break_between_values_first():
    font = cs.load_font(12)
    width = int(font.getlength("oil painting ·")) + 2
    assert cs.wrap_parts(["oil painting", "golden hour"], font, width, 3) == ["oil painting ·", "golden hour"]
    assert cs.wrap_parts(["a", "b"], font, 200, 3) == ["a · b"]
    lines = cs.wrap_parts(["a very long value that needs words wrapped", "x", "y", "z"], font, 60, 3)
    assert len(lines) == 3 and lines[-1].endswith("…")
    assert all(font.getlength(line) <= 60 for line in lines)
