"""Build the notebook the kernel runs: the student's definitions, then one measuring cell per function.

Pure: sources in, an nbformat notebook out. Each cell carries metadata saying
what it is, so the executed notebook can be read back without guessing.
"""

import json

import nbformat

PROBE_NAME = "_resnet_grader_probe"

# Before any student code: Keras (already imported in a warm kernel), then gc.freeze(), so the
# garbage collections the probe's keras.backend.clear_session() runs before every case skip the
# ~300,000 objects the import made (0.5 s each to traverse, 7 cases per submission). The collector
# is off during the import (faster) and on again after it, whatever the kernel's warm-up did.
SETUP = """\
import os as _os, warnings as _warnings
_warnings.filterwarnings("ignore")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import gc as _gc
_gc.disable()
try:
    import keras as _keras
finally:
    _gc.enable()
    _gc.freeze()
del _gc, _keras
"""

LOAD_PROBE = """\
import types as _types
{name} = _types.ModuleType("{name}")
exec(compile({source!r}, "<grader probe>", "exec"), {name}.__dict__)
del _types
"""

LOAD_BLOCKS = """\
_resnet_grader_blocks = {{}}
exec(compile({source!r}, "<reference blocks>", "exec"), _resnet_grader_blocks)
"""

MEASURE = """\
{name}.emit({name}.measure_function(
    {function!r}, globals().get({function!r}), __import__("json").loads({cases!r}), blocks={blocks},
    reference=__import__("json").loads({reference!r}), modes=__import__("json").loads({modes!r}),
    keras2={keras2!r}))
"""

# The course's own modules (resnets_utils, test_utils, public_tests), as the student's import cell
# expects them: made from their sources, so nothing of the grader's files need be visible in the
# kernel. One that fails to load is left out, and the student's import of it fails as it would.
COURSE = """\
import sys as _sys, types as _types
for _name, _source in {sources!r}.items():
    _module = _types.ModuleType(_name)
    _module.__file__ = "<course module " + _name + ">"
    _sys.modules[_name] = _module
    try:
        exec(compile(_source, _module.__file__, "exec"), _module.__dict__)
    except Exception as _exc:
        del _sys.modules[_name]
        print("course module", _name, "could not be loaded:", repr(_exc))
del _sys, _types
"""


def _cell(source, role, **meta):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["resnet_grader"] = {"role": role, **meta}
    return cell


def build(definitions, probe_source, blocks_source, cases, references, modes=None, course=None, keras2=()):
    """The grading notebook.

    Args:
        definitions: (cell number, source) pairs from the submission, in order.
        probe_source: text of grader/probe.py.
        blocks_source: text of the correct blocks, used only while ResNet50 is measured.
        cases: {function: [case dicts]} in grading order.
        references: {function: {case id: the reference's layer table}}, whose weights paired layers get.
        modes: {function: how its two modes call and run it} (grader.probe.MODEL_MODES where absent).
        course: {module name: source} of the course modules the student's code may import.
        keras2: the Keras 2 defaults the version was taught with (grader.probe.KERAS2_DEFAULTS).
    """
    cells = [_cell(SETUP, "setup")]
    if course:
        cells.append(_cell(COURSE.format(sources=dict(course)), "course"))
    cells += [_cell(src, "student", cell_number=n) for n, src in definitions]
    # A fresh probe for every function: a submission that tampers with it while one function
    # runs cannot change how the next one is measured.
    load_probe = LOAD_PROBE.format(name=PROBE_NAME, source=probe_source)
    for function, function_cases in cases.items():
        blocks = "None"
        if function == "ResNet50":
            cells.append(_cell(LOAD_BLOCKS.format(source=blocks_source), "blocks"))
            blocks = ("{k: _resnet_grader_blocks[k] for k in ('identity_block', 'convolutional_block')}")
        source = MEASURE.format(name=PROBE_NAME, function=function, cases=json.dumps(list(function_cases)),
                                blocks=blocks, reference=json.dumps(references[function], separators=(",", ":")),
                                modes=json.dumps((modes or {}).get(function)), keras2=tuple(keras2))
        cells.append(_cell(load_probe + source, "measure", function=function))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "resnet-grader", "display_name": "ResNet grader", "language": "python"}
    return nb
