"""The code's layout: four wings, imports only running down (vision, model, products, app)."""
import ast
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

#: Each wing may import from the wings before it, and from the base modules.
ORDER = ("vision", "model", "products", "app")
BASE = ("labels", "numbers", "files", "stops")


def imported_modules(path):
    """Every ``features.*`` module a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("features"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("features"))
    return found


def wing(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_imports_only_run_down():
    wrong = []
    for path in sorted((ROOT / "features").rglob("*.py")):
        if "models" in path.relative_to(ROOT / "features").parts:  # export scripts, run once by hand
            continue
        own = path.relative_to(ROOT / "features").parts[0].removesuffix(".py")
        for module in imported_modules(path):
            other = wing(module)
            if own in BASE and other not in BASE:
                wrong.append(f"{path.name} ({own}) imports {module}")
            elif own in ORDER and other in ORDER and ORDER.index(other) > ORDER.index(own):
                wrong.append(f"{path.name} ({own}) imports {module}")
    assert not wrong, wrong


def test_every_module_lives_in_a_wing_or_the_base():
    top = {p.stem for p in (ROOT / "features").glob("*.py")} - {"__init__"}
    assert top == set(BASE)
    packages = {p.parent.name for p in (ROOT / "features").glob("*/__init__.py")}
    assert packages == set(ORDER)


def test_products_read_the_answer_not_the_models():
    """Products take per-face scores and types (plain dicts): they import no vision or model
    module, and importing them loads none of OpenCV, dlib, onnxruntime, scikit-learn and
    XGBoost."""
    wrong = [f"{path.name} imports {module}"
             for path in sorted((ROOT / "features" / "products").rglob("*.py"))
             for module in imported_modules(path) if wing(module) not in (*BASE, "products")]
    assert not wrong, wrong
    heavy = ("cv2", "dlib", "onnxruntime", "sklearn", "xgboost")
    code = f"import sys, features.products.recommendations; print([m for m in {heavy!r} if m in sys.modules])"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert loaded.stdout.strip() == "[]", loaded.stderr


def test_the_web_app_imports_only_its_earlier_stages():
    """Inside the web app a request's photos are saved and named (uploads), its body counted as
    it arrives (limits), its photos queued to the workers (analyser), and the answer shaped
    (schema) and given (app): each module imports only those before it."""
    stages = ("uploads", "limits", "analyser", "schema", "app")
    web = ROOT / "features" / "app" / "web"
    assert {p.stem for p in web.glob("*.py")} - {"__init__"} == set(stages)
    wrong = [f"{stage}.py imports {module}" for n, stage in enumerate(stages)
             for module in imported_modules(web / f"{stage}.py")
             if module.startswith("features.app.web.") and module.rsplit(".", 1)[1] not in stages[:n]]
    assert not wrong, wrong
