"""The ctypes bindings of harness/algorithms/cudnn.py, checked against the C headers of the cuDNN wheel.

Runs on a CPU machine: the headers (``nvidia/cudnn/include`` of the nvidia-cudnn wheel that PyTorch depends
on) are read as text by the small parser below, and every prototype, enum value and the layout of
cudnnConvolutionFwdAlgoPerf_t are compared with what cudnn.py declares. Where the wheel has no headers, the
tests skip and say where they looked. One last test checks the loaded libcudnn itself: every symbol exists
and its version is the headers' version.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import re
from ctypes import POINTER, c_char_p, c_float, c_int, c_size_t, c_void_p
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from harness.algorithms import cudnn, cudnn_enums, cudnn_library

HEADER_FILES = ("cudnn_graph.h", "cudnn_ops.h", "cudnn_cnn.h")  # the *_v9.h copies are the same text


# The header reader ---------------------------------------------------------------------------------------

_MACROS = re.compile(r"\b(CUDNN_DEPRECATED_ENUM|CUDNN_DEPRECATED|CUDNNWINAPI)\b")


def clean(text: str) -> str:
    """C text without comments, preprocessor lines and the attribute macros, whitespace joined to one space."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)  # with continuation lines
    text = _MACROS.sub(" ", text)
    return re.sub(r"\s+", " ", text)


@dataclass
class CType:
    """A C type as written: ``base`` without const, and its pointer depth."""

    base: str
    pointers: int = 0

    def declare(self, name: str | None = None) -> str:
        return f"{self.base} {'*' * self.pointers}{name or ''}".strip()


def parse_declarator(text: str) -> tuple[CType, str | None, int | None]:
    """``const cudnnTensorDescriptor_t xDesc`` -> (type, name, array size); a lone type has no name."""
    tokens = [t for t in re.findall(r"\w+|\*|\[\s*\d+\s*\]", text) if t != "const"]
    size = int(tokens.pop()[1:-1]) if tokens and tokens[-1].startswith("[") else None
    words = [t for t in tokens if t != "*"]
    name = tokens.pop() if len(words) >= 2 and tokens[-1] != "*" else None
    return CType(" ".join(t for t in tokens if t != "*"), tokens.count("*")), name, size


@dataclass
class Headers:
    """What the tests need from the header text: enums, opaque pointer typedefs, structs and prototypes."""

    text: str  # cleaned
    enums: dict[str, dict[str, int]] = field(default_factory=dict)  # type name -> {enumerator: value}
    values: dict[str, int] = field(default_factory=dict)  # every enumerator, all enums together
    handles: set[str] = field(default_factory=set)  # typedef struct X *Name;
    structs: dict[str, list[tuple[str, CType, int | None]]] = field(default_factory=dict)  # fields
    notes: dict[str, str] = field(default_factory=dict)  # enumerator -> its /**< ... */ comment

    @classmethod
    def parse(cls, raw: str) -> Headers:
        h = cls(clean(raw))
        h.notes = dict(re.findall(r"^\s*(CUDNN_\w+)\b[^,\n/]*=[^,\n/]*,?\s*/\*\*<(.*?)\*/", raw, flags=re.M))
        for body, name in re.findall(r"typedef enum\s*\w*\s*\{([^}]*)\}\s*(\w+)\s*;", h.text):
            h.enums[name] = h._enumerators(body)
        h.handles = set(re.findall(r"typedef struct \w+ ?\* ?(\w+) ?;", h.text))
        for body, name in re.findall(r"typedef struct\s*\w*\s*\{([^}]*)\}\s*(\w+)\s*;", h.text):
            h.structs[name] = []
            for decl in filter(str.strip, body.split(";")):
                ctype, fname, size = parse_declarator(decl)
                h.structs[name].append((fname, ctype, size))
        return h

    def _enumerators(self, body: str) -> dict[str, int]:
        """``A = 3, B, C = A`` -> {A: 3, B: 4, C: 3}: explicit values, implicit increments, references."""
        out: dict[str, int] = {}
        nxt = 0
        for item in filter(str.strip, body.split(",")):
            name, _, value = (s.strip() for s in item.partition("="))
            if value:
                literal = value.rstrip("uUlL")
                nxt = self.values[value] if value in self.values else int(literal, 0)
            out[name] = self.values[name] = nxt
            nxt += 1
        return out

    def prototype(self, name: str) -> tuple[CType, list[tuple[CType, str | None]]]:
        """The return type and the (type, name) of each parameter of the one declaration of ``name``."""
        found = list(re.finditer(r"\b" + re.escape(name) + r" ?\(([^;{})]*)\) ?;", self.text))
        assert len(found) == 1, f"{name}: {len(found)} declarations in the headers, expected one"
        start = max(self.text.rfind(c, 0, found[0].start()) for c in ";{}") + 1  # the end of what precedes it
        ret, args = self.text[start : found[0].start()], found[0].group(1)
        params = [parse_declarator(a)[:2] for a in args.split(",")]
        if len(params) == 1 and params[0][0] == CType("void") and params[0][1] is None:
            params = []  # f(void)
        return parse_declarator(ret)[0], params


# C types to ctypes, as cudnn.py is meant to bind them --------------------------------------------------

PERF_STRUCT = "cudnnConvolutionFwdAlgoPerf_t"
# each perf struct of the header and the ctypes class that stands for it (one per direction)
PERF_STRUCTS = {
    PERF_STRUCT: cudnn_library._AlgoPerf,
    "cudnnConvolutionBwdDataAlgoPerf_t": cudnn_library._BwdDataAlgoPerf,
    "cudnnConvolutionBwdFilterAlgoPerf_t": cudnn_library._BwdFilterAlgoPerf,
}


def to_ctypes(t: CType, h: Headers) -> object:
    """The ctypes type that cudnn.py should use for a C type (AssertionError where there is no rule)."""
    opaque = t.base in h.handles or t.base == "cudaStream_t"
    integer = t.base == "int" or t.base in h.enums
    if t.pointers == 0:
        if opaque:
            return c_void_p
        if integer:
            return c_int
        if t.base in ("size_t", "float"):
            return {"size_t": c_size_t, "float": c_float}[t.base]
    if t.pointers == 1:
        if t.base == "void":
            return c_void_p
        if t.base == "char":
            return c_char_p
        if integer:
            return POINTER(c_int)
        if t.base == "size_t":
            return POINTER(c_size_t)
        if opaque:
            return POINTER(c_void_p)
        if t.base in PERF_STRUCTS:
            return POINTER(PERF_STRUCTS[t.base])
    raise AssertionError(f"no ctypes rule for the C type {t.declare()}")


# Finding the headers ------------------------------------------------------------------------------------


def include_candidates() -> list[Path]:
    """Where the wheel's headers would be: <site-packages>/nvidia/cudnn/include for each nvidia/cudnn."""
    try:
        spec = importlib.util.find_spec("nvidia.cudnn")
    except ModuleNotFoundError:  # no nvidia namespace package at all
        spec = None
    return [Path(root) / "include" for root in (spec.submodule_search_locations or [])] if spec else []


def include_dir() -> Path | None:
    return next((d for d in include_candidates() if all((d / f).is_file() for f in HEADER_FILES)), None)


@functools.lru_cache(maxsize=1)
def _headers() -> Headers | str:
    """The parsed headers, or why there are none."""
    where = include_dir()
    if where is None:
        looked = ", ".join(map(str, include_candidates())) or "nvidia.cudnn (the package is not installed)"
        return f"no cuDNN headers ({', '.join(HEADER_FILES)}): looked in {looked}"
    return Headers.parse("\n".join((where / f).read_text() for f in HEADER_FILES))


@pytest.fixture(scope="module")
def headers() -> Headers:
    h = _headers()
    if isinstance(h, str):
        pytest.skip(h)
    return h


# The parser itself ---------------------------------------------------------------------------------------


def test_parser_reads_enums_with_implicit_values_and_references():
    h = Headers.parse("""
        typedef enum {
            A_ZERO,               /* implicit 0 */
            A_FIVE = 5,
            A_SIX,                // implicit increment
            A_OLD CUDNN_DEPRECATED_ENUM = A_FIVE, /**< alias */
            A_NEXT,
            A_HEX = 0x10,
        } a_t CUDNN_DEPRECATED;
    """)
    assert h.enums == {"a_t": {"A_ZERO": 0, "A_FIVE": 5, "A_SIX": 6, "A_OLD": 5, "A_NEXT": 6, "A_HEX": 16}}


def test_parser_reads_declarations_typedefs_and_structs():
    h = Headers.parse("""
        #if defined(X)
        #define Y \\
            f(int a);
        #endif
        typedef struct fooStruct *foo_t CUDNN_DEPRECATED;
        typedef struct barStruct { int x; /* a */ float y[4]; } bar_t;
        /** @brief f. */
        CUDNN_DEPRECATED cudnnStatus_t CUDNNWINAPI
        f(const foo_t a, /* in */ const int n, int *out, const void *p);
        const char *CUDNNWINAPI
        g(void);
    """)
    assert h.handles == {"foo_t"}
    assert h.structs == {"bar_t": [("x", CType("int"), None), ("y", CType("float"), 4)]}
    assert h.prototype("f") == (
        CType("cudnnStatus_t"),
        [(CType("foo_t"), "a"), (CType("int"), "n"), (CType("int", 1), "out"), (CType("void", 1), "p")],
    )
    assert h.prototype("g") == (CType("char", 1), [])


# Prototypes ----------------------------------------------------------------------------------------------


def expected_prototype(name: str, h: Headers) -> tuple[object, list[object], list[str]]:
    ret, params = h.prototype(name)
    return to_ctypes(ret, h), [to_ctypes(t, h) for t, _ in params], [t.declare(n) for t, n in params]


@pytest.mark.parametrize("name", list(cudnn.PROTOTYPES))
def test_prototype_matches_the_header(name: str, headers: Headers):
    restype, argtypes = cudnn.PROTOTYPES[name]
    want_res, want_args, declared = expected_prototype(name, headers)
    assert restype is want_res, f"{name} returns {want_res.__name__} per the header, not {restype}"
    assert len(argtypes) == len(want_args), f"{name}: the header has {len(want_args)} parameters: {declared}"
    for i, (got, want, decl) in enumerate(zip(argtypes, want_args, declared)):
        assert got is want, f"{name} parameter {i} ({decl}): header says {want.__name__}, cudnn.py has {got.__name__}"


@pytest.mark.parametrize(
    "change",
    [lambda a: a[:-1], lambda a: a + [c_int], lambda a: a[:-1] + [POINTER(c_int)], lambda a: [c_int] + a[1:]],
    ids=["dropped", "added", "size_t* as int*", "handle as int"],
)
def test_a_changed_prototype_fails(change, headers: Headers, monkeypatch: pytest.MonkeyPatch):
    """The check above notices a dropped, an added and a mistyped argument."""
    name = "cudnnGetConvolutionForwardWorkspaceSize"
    restype, argtypes = cudnn.PROTOTYPES[name]
    monkeypatch.setitem(cudnn.PROTOTYPES, name, (restype, change(list(argtypes))))
    with pytest.raises(AssertionError):
        test_prototype_matches_the_header(name, headers)


# Enum values ---------------------------------------------------------------------------------------------


def test_forward_algorithms_are_the_headers(headers: Headers):
    algos = headers.enums["cudnnConvolutionFwdAlgo_t"]
    prefix = "CUDNN_CONVOLUTION_FWD_ALGO_"
    assert {k.removeprefix(prefix).lower(): v for k, v in algos.items() if k != prefix + "COUNT"} == cudnn.FWD_ALGOS
    assert algos[prefix + "COUNT"] == cudnn.FWD_ALGO_COUNT
    assert {v: k for k, v in cudnn.FWD_ALGOS.items()} == cudnn.FWD_ALGO_NAMES


ENUM_TYPES = {
    "forward": "cudnnConvolutionFwdAlgo_t",
    "backward_data": "cudnnConvolutionBwdDataAlgo_t",
    "backward_filter": "cudnnConvolutionBwdFilterAlgo_t",
}


@pytest.mark.parametrize("direction", sorted(ENUM_TYPES))
def test_every_direction_is_the_headers(headers: Headers, direction: str):
    from harness.algorithms import cudnn_enums

    table, count, prefix = cudnn_enums.DIRECTIONS[direction]
    algos = headers.enums[ENUM_TYPES[direction]]
    names = {k.removeprefix(prefix).lower(): v for k, v in algos.items() if k != prefix + "COUNT"}
    assert {f"algo_{k}" if k.isdigit() else k: v for k, v in names.items()} == table  # ALGO_0 -> algo_0
    assert algos[prefix + "COUNT"] == count == len(table)


def test_descriptor_constants_are_the_headers(headers: Headers):
    v = headers.values
    assert v["CUDNN_TENSOR_NCHW"] == cudnn.TENSOR_NCHW
    assert v["CUDNN_TENSOR_NHWC"] == cudnn.TENSOR_NHWC
    formats = headers.enums["cudnnTensorFormat_t"]
    assert {
        layout: formats[f"CUDNN_TENSOR_{layout.upper()}"] for layout in cudnn.TENSOR_FORMATS
    } == cudnn.TENSOR_FORMATS
    assert v["CUDNN_CROSS_CORRELATION"] == cudnn.CROSS_CORRELATION
    assert {
        torch.float32: v["CUDNN_DATA_FLOAT"],
        torch.float16: v["CUDNN_DATA_HALF"],
        torch.bfloat16: v["CUDNN_DATA_BFLOAT16"],
    } == cudnn.DATA_TYPES
    assert v["CUDNN_DATA_FLOAT"] == cudnn.COMPUTE_TYPE
    assert {"tensor_op": v["CUDNN_TENSOR_OP_MATH"], "fma": v["CUDNN_FMA_MATH"]} == cudnn.MATH_TYPES
    assert v["CUDNN_STATUS_NOT_INITIALIZED"] == cudnn.STATUS_NOT_INITIALIZED


LAYER = [
    "NOT_SUPPORTED",
    "NOT_SUPPORTED_GRAPH_PATTERN",
    "NOT_SUPPORTED_SHAPE",
    "NOT_SUPPORTED_DATA_TYPE",
    "NOT_SUPPORTED_LAYOUT",
    "NOT_SUPPORTED_ARCH_MISMATCH",
    "NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT",
    "NOT_SUPPORTED_PADDING",
    "NOT_SUPPORTED_BAD_LAUNCH_PARAM",
    "NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE",
]
ENVIRONMENT = [
    "NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER",
    "NOT_SUPPORTED_INCOMPATIBLE_CUDART",
    "NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING",
    "NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE",
    "NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API",
]


def test_layer_statuses_are_the_headers_layer_statuses(headers: Headers):
    statuses = headers.enums["cudnnStatus_t"]
    assert {statuses["CUDNN_STATUS_" + s] for s in LAYER} == cudnn.LAYER_STATUSES
    not_supported = {k for k in statuses if k.startswith("CUDNN_STATUS_NOT_SUPPORTED")}
    assert not_supported == {
        "CUDNN_STATUS_" + s for s in LAYER + ENVIRONMENT
    }, "a new NOT_SUPPORTED status: classify it"
    for s in ENVIRONMENT:
        code = statuses["CUDNN_STATUS_" + s]
        assert code not in cudnn.LAYER_STATUSES
        assert type(cudnn.error_for("cudnnX", code, "CUDNN_STATUS_" + s)) is cudnn.CudnnError


# The perf struct -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("struct", sorted(PERF_STRUCTS))
def test_algo_perf_struct_is_the_headers(headers: Headers, struct: str):
    fields = headers.structs[struct]
    want = [(n, to_ctypes(t, headers) * size if size else to_ctypes(t, headers)) for n, t, size in fields]
    ours = PERF_STRUCTS[struct]
    got = ours._fields_
    assert [n for n, _ in got] == [n for n, _ in want]
    for (n, g), (_, w) in zip(got, want):
        if issubclass(w, ctypes.Array):  # c_int * 3 makes a new class each time: compare element and length
            assert issubclass(g, ctypes.Array) and (g._type_, g._length_) == (w._type_, w._length_), n
        else:
            assert g is w, f"field {n}: header says {w.__name__}, cudnn.py has {g.__name__}"

    class FromHeader(ctypes.Structure):
        _fields_ = want

    assert ctypes.sizeof(FromHeader) == ctypes.sizeof(ours)
    assert [getattr(FromHeader, n).offset for n, _ in want] == [getattr(ours, n).offset for n, _ in got]


def test_the_determinism_constant_is_the_headers(headers: Headers):
    assert headers.enums["cudnnDeterminism_t"]["CUDNN_DETERMINISTIC"] == cudnn_library.DETERMINISTIC


@pytest.mark.parametrize("direction", sorted(ENUM_TYPES))
def test_documented_nondeterminism_and_what_is_not_implemented_are_the_headers_words(headers: Headers, direction):
    """cudnn_enums' tables are what cudnn_ops.h says in each enumerator's comment: "Non-deterministic" and
    "(not implemented)"."""
    table, _, prefix = cudnn_enums.DIRECTIONS[direction]
    notes = {name: headers.notes.get(prefix + name.removeprefix("algo_").upper()) for name in table}
    assert all(notes.values()), f"an enumerator without its comment: {notes}"  # the reader found every one
    said = {name: note.lower() for name, note in notes.items()}
    assert {n for n, note in said.items() if "non-deterministic" in note} == cudnn_enums.NONDETERMINISTIC[direction]
    assert {n for n, note in said.items() if "not implemented" in note} == cudnn_enums.NOT_IMPLEMENTED[direction]


def test_the_parser_reads_enumerator_comments():
    h = Headers.parse("""
        typedef enum {
            CUDNN_A_0 = 0, /**< Sum. Non-deterministic. @since 9 */
            CUDNN_A_1         = 1, /**< Other. */
            CUDNN_A_COUNT = 2 /**< Count. */
        } a_t;
    """)
    assert {k: v.strip() for k, v in h.notes.items()} == {
        "CUDNN_A_0": "Sum. Non-deterministic. @since 9",
        "CUDNN_A_1": "Other.",
        "CUDNN_A_COUNT": "Count.",
    }


_DESCRIPTOR = {True: "cudnnFilterDescriptor_t", False: "cudnnTensorDescriptor_t"}


@pytest.mark.parametrize("direction", sorted(cudnn_library.CALLS))
def test_each_directions_calls_take_their_operands_in_the_headers_order(headers: Headers, direction: str):
    """A DirectionCalls says which operands its calls read and write, in which order: the run call's parameter
    names are the header's, and in every call of the direction each descriptor is of its operand's kind
    (filter or tensor), so the shared code that passes (a, b, convolution, out) passes them where cuDNN reads."""
    api = cudnn_library.CALLS[direction]
    assert api.direction == direction
    a, b, out = api.operands
    params = headers.prototype(api.run)[1]
    names = [n for _, n in params]
    assert [names[i] for i in (2, 3, 4, 5, 11, 12)] == [f"{a}Desc", a, f"{b}Desc", b, f"{out}Desc", out]
    kinds = [_DESCRIPTOR[api.is_filter(op)] for op in api.operands]
    for call, positions in (
        (api.run, (2, 4, 6, 11)),
        (api.workspace, (1, 2, 3, 4)),
        (api.heuristic, (1, 2, 3, 4)),
        (api.find, (1, 3, 5, 6)),
    ):
        assert call in cudnn.PROTOTYPES, call
        types = [headers.prototype(call)[1][i][0].base for i in positions]
        assert types == [kinds[0], kinds[1], "cudnnConvolutionDescriptor_t", kinds[2]], call
    assert cudnn.PROTOTYPES[api.heuristic][1][-1] is POINTER(api.perf)
    assert cudnn.PROTOTYPES[api.find][1][10] is POINTER(api.perf)


# The loaded library --------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.backends.cudnn.is_available(), reason="no cuDNN in this torch")
def test_loaded_library_has_every_symbol_and_the_headers_version(headers: Headers):
    lib = cudnn.library()
    missing = [name for name in cudnn.PROTOTYPES if not hasattr(lib.lib, name)]
    assert not missing, f"{lib.path} lacks {missing}"
    version_h = (include_dir() / "cudnn_version.h").read_text()  # type: ignore[operator]
    macros = dict(re.findall(r"^#define (CUDNN_\w+) (.+?)\s*$", version_h, flags=re.M))
    formula = re.sub(r"CUDNN_\w+", lambda m: macros[m.group()], macros["CUDNN_VERSION"])
    assert re.fullmatch(r"[\d\s()+*]+", formula), f"CUDNN_VERSION is not simple arithmetic: {formula}"
    assert lib.version() == eval(formula), f"{lib.path} is cuDNN {lib.version()}, the headers are {formula}"


# The descriptor calls, argument by argument ---------------------------------------------------------------


class _RecordingLib:
    """Stands in for the loaded library: each entry point records its arguments and returns SUCCESS."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        calls = self.calls

        class Entry:
            restype = argtypes = None

            def __call__(self, *args: object) -> int:
                calls.append((name, args))
                return 0

        entry = Entry()
        setattr(self, name, entry)
        return entry


@pytest.mark.parametrize("layout", sorted(cudnn.TENSOR_FORMATS))
@pytest.mark.parametrize("kind", ["Tensor", "Filter"])
def test_descriptor_arguments_land_on_the_headers_parameters(headers: Headers, layout: str, kind: str):
    """cudnnSetTensor4dDescriptor takes (desc, format, dataType, n, c, h, w) and cudnnSetFilter4dDescriptor
    (desc, dataType, format, k, c, h, w): each value the harness passes is read by name from the header's
    prototype, so a swapped format and data type (both ints to ctypes) fails here."""
    lib = _RecordingLib()
    wrapper = cudnn.Cudnn(lib, "recording")  # type: ignore[arg-type]
    make = wrapper.tensor_descriptor if kind == "Tensor" else wrapper.filter_descriptor
    make((2, 3, 5, 7), torch.float16, layout)
    name = f"cudnnSet{kind}4dDescriptor"
    (args,) = [a for n, a in lib.calls if n == name]
    params = [p for _, p in headers.prototype(name)[1]]
    by_name = dict(zip(params, args))
    assert by_name["format"] == cudnn.TENSOR_FORMATS[layout]
    assert by_name["dataType"] == cudnn.DATA_TYPES[torch.float16]
    assert [by_name[p] for p in params[-4:]] == [2, 3, 5, 7]


@pytest.mark.parametrize("direction", sorted(cudnn_library.CALLS))
def test_each_directions_operands_land_on_the_headers_parameters(
    headers: Headers, direction: str, monkeypatch: pytest.MonkeyPatch
):
    """The shared run call and workspace query, made for real on a recording library: each descriptor, data
    pointer and scalar is read back by the header's parameter name (the filter's pointer lands on ``w``, the
    output gradient's on ``dy``...), alpha is 1 and beta 0 (a fresh result, nothing accumulated)."""
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: type("S", (), {"cuda_stream": 0})())
    lib = _RecordingLib()
    wrapper = cudnn.Cudnn(lib, "recording")  # type: ignore[arg-type]
    handle = cudnn.Handle(wrapper, c_void_p(1))
    layer = cudnn.LayerDescriptors.build(
        wrapper, (2, 4, 9, 9), (6, 4, 3, 3), torch.float32, cudnn.ConvGeometry(4, 6, (3, 3)), "fma", "nchw"
    )
    api = cudnn_library.CALLS[direction]
    descs = layer.for_calls(api)
    tensors = {"x": torch.zeros(2, 4, 9, 9), "w": torch.zeros(6, 4, 3, 3), "y": torch.zeros(2, 6, 7, 7)}
    tensors |= {"dx": tensors["x"], "dw": tensors["w"], "dy": tensors["y"]}
    descriptor = {"x": layer.x, "dx": layer.x, "w": layer.w, "dw": layer.w, "y": layer.y, "dy": layer.y}
    a, b, out = api.operands
    name = list(cudnn_enums.DIRECTIONS[direction][0])[-1]  # any algorithm (not code 0): its code is checked
    lib.calls.clear()
    cudnn.execute(wrapper, handle, api, descs, tensors[a], tensors[b], name, 0, tensors[out])
    (args,) = [c for n, c in lib.calls if n == api.run]
    by_name = dict(zip([p for _, p in headers.prototype(api.run)[1]], args))
    for operand in api.operands:
        assert by_name[operand] == tensors[operand].data_ptr(), operand
        assert by_name[f"{operand}Desc"] is descriptor[operand].ptr, operand
    assert by_name["algo"] == cudnn_enums.DIRECTIONS[direction][0][name]
    assert by_name["alpha"]._obj.value == 1.0 and by_name["beta"]._obj.value == 0.0
    assert by_name["convDesc"] is layer.conv.ptr
    cudnn.workspace_size(wrapper, handle, api, descs, name)
    (args,) = [c for n, c in lib.calls if n == api.workspace]
    params = [p for _, p in headers.prototype(api.workspace)[1]]
    assert dict(zip(params, args))["algo"] == cudnn_enums.DIRECTIONS[direction][0][name]
