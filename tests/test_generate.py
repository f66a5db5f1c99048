"""``edge-sdk generate``: every template, several boards, validated structurally; each
project's C/C++ compiled with arm-none-eabi-gcc (against stub SDK headers where the ecosystem's
SDK cannot be installed here)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import edge_sdk
from edge_sdk.cli import main
from edge_sdk.compiler.targets import TARGETS
from edge_sdk.project.boards import get_board
from tests.conftest import shared_model

STUBS = Path(__file__).parent / "stubs"
GENERATED = [  # (template, board)
    ("zephyr", "stm32f746g_disco"), ("zephyr", "nucleo_l4r5zi"), ("zephyr", "rpi-pico"),
    ("zephyr", "mps3-an547"), ("arduino", "nano33ble"), ("arduino", "rpi-pico"),
    ("cmsis", "stm32f746g-disco"), ("cmsis", "nrf52840dk"), ("cmsis", "mps2-an386"),
    ("baremetal", "mps2-an386"), ("baremetal", "mps3-an547"),
    ("platformio", "nano33ble"), ("platformio", "rpi-pico"), ("platformio", "stm32f746g-disco"),
    ("platformio", "nucleo-l4r5zi"), ("zephyr", "mps2-an385"), ("zephyr", "mps2-an386"),
    ("zephyr", "mps2-an500"),
]


@pytest.fixture(scope="module")
def kws():
    return edge_sdk.load(shared_model("kws_ref_model"))


def generate(kws, tmp_path, template, board, name="kws_app"):
    return edge_sdk.generate(kws, board, tmp_path / name, template=template)


def common_checks(project: Path, template: str, board: str) -> None:
    meta = json.loads((project / "edge_project.json").read_text())
    assert (meta["template"], meta["board"]) == (template, get_board(board).name)
    assert list(project.glob("README*")), "every project has its own README"
    headers = list(project.rglob("kws_ref_model.h"))
    assert len(headers) == 1 and "kws_ref_model_run" in headers[0].read_text()
    assert len(list(project.rglob("edge_protocol.c"))) == 1
    config = next(project.rglob("edge_model_config.h")).read_text()
    assert "#define EDGE_DEMO_AT_BOOT 1" in config and "edge_sample_input" in config


def check_zephyr(project: Path, board: str) -> None:
    cmake = (project / "CMakeLists.txt").read_text()
    assert "find_package(Zephyr" in cmake and "target_sources(app" in cmake
    conf = dict(line.split("=", 1) for line in (project / "prj.conf").read_text().splitlines()
                if line and not line.startswith("#"))
    assert conf["CONFIG_SERIAL"] == "y" and conf["CONFIG_PRINTK"] == "n"
    sample = yaml.safe_load((project / "sample.yaml").read_text())
    (test,) = sample["tests"].values()
    assert test["platform_allow"] == [get_board(board).zephyr]
    assert re.fullmatch(sample["common"]["harness_config"]["regex"][0],
                        "edge-sdk: kws_ref_model: top class 9")
    assert (project / "src" / "main.c").exists() and (project / "README.rst").exists()
    b = get_board(board)
    manifest = yaml.safe_load((project / "west.yml").read_text())["manifest"]
    assert manifest["self"]["path"] == project.name
    (zephyr,) = manifest["projects"]
    assert zephyr["name"] == "zephyr" and zephyr["revision"].startswith("v")
    assert set(zephyr["import"]["name-allowlist"]) == set(b.zephyr_modules)
    if b.emulator:  # `west build -t run_edge_qemu` starts the board's QEMU machine
        assert "add_custom_target(run_edge_qemu" in cmake
        assert f"-M {b.emulator['machine']}" in cmake and "zephyr_final" in cmake
        assert "run_edge_qemu" in (project / "README.rst").read_text()


def test_zephyr_project_is_a_west_workspace(kws, tmp_path):
    """`west init -l PROJECT` (west from PyPI) makes a workspace whose manifest is the project's
    west.yml, and west's own parser takes it (imports not followed: no network here)."""
    import shutil as sh

    if sh.which("west") is None and not (Path(sys.executable).parent / "west").exists():
        pytest.skip("west is not installed (pip install -e '.[dev]' installs it)")
    west = sh.which("west") or str(Path(sys.executable).parent / "west")
    project = generate(kws, tmp_path, "zephyr", "mps2-an386")
    subprocess.run([west, "init", "-l", project.name], cwd=tmp_path, check=True,
                   capture_output=True)
    assert "path = kws_app" in (tmp_path / ".west" / "config").read_text()
    from west.manifest import ImportFlag, Manifest

    m = Manifest.from_topdir(topdir=tmp_path, import_flags=ImportFlag.IGNORE)
    zephyr = m.get_projects(["zephyr"])[0]
    assert zephyr.url == "https://github.com/zephyrproject-rtos/zephyr"
    assert zephyr.revision == "v4.2.0" and m.projects[0].abspath == str(project)


ARDUINO_FIELDS = {"name", "version", "author", "maintainer", "sentence", "paragraph",
                  "category", "url", "architectures"}
ARDUINO_CATEGORIES = {"Display", "Communication", "Signal Input/Output", "Sensors",
                      "Device Control", "Timing", "Data Storage", "Data Processing", "Other"}


def check_arduino(project: Path, board: str) -> None:
    props = dict(line.split("=", 1)
                 for line in (project / "library.properties").read_text().splitlines() if line)
    assert set(props) >= ARDUINO_FIELDS
    assert props["category"] in ARDUINO_CATEGORIES
    lib = props["name"]
    assert lib == "KwsApp" and props["includes"] == f"{lib}.h"
    fqbn = get_board(board).arduino["fqbn"]
    assert props["architectures"] == fqbn.split(":")[1]
    assert (project / "src" / f"{lib}.h").exists()
    sketch = (project / "examples" / lib / f"{lib}.ino").read_text()
    assert f"#include <{lib}.h>" in sketch and "void setup()" in sketch and "void loop()" in sketch
    assert not (project / "src" / "main.c").exists(), "Arduino programs start in setup()"


def check_cmsis(project: Path, board: str) -> None:
    solution = yaml.safe_load((project / "kws_app.csolution.yml").read_text())["solution"]
    b = get_board(board)
    (target,) = solution["target-types"]
    assert target["device"] == f"{b.cmsis.vendor}::{b.cmsis.device}"
    assert {"pack": b.cmsis.pack} in solution["packs"]
    (proj,) = solution["projects"]
    cproject = yaml.safe_load((project / proj["project"]).read_text())["project"]
    files = [f["file"] for g in cproject["groups"] for f in g["files"]]
    assert files and all((project / f).exists() for f in files)
    assert {"component": "ARM::CMSIS:CORE"} in cproject["components"]


def check_platformio(project: Path, board: str) -> None:
    """PlatformIO's layout: platformio.ini with one environment for the board, the program in
    src/, the model and protocol as a private library in lib/ (PlatformIO cannot fetch its
    platforms here, so the sources are compiled against stub headers below)."""
    import configparser

    b = get_board(board)
    ini = configparser.ConfigParser(inline_comment_prefixes=(";",))
    ini.read(project / "platformio.ini")
    assert ini["platformio"]["default_envs"] == b.name
    env = ini[f"env:{b.name}"]
    assert (env["platform"], env["board"], env["framework"]) == (
        b.platformio["platform"], b.platformio["board"], "arduino")
    assert "-ffp-contract=off" in env["build_flags"] and env["monitor_speed"] == "115200"
    (lib,) = (project / "lib").iterdir()
    manifest = json.loads((lib / "library.json").read_text())
    assert manifest["name"] == lib.name == "KwsApp" and manifest["frameworks"] == "arduino"
    assert (lib / "src" / "KwsApp.h").is_file() and (lib / "src" / "kws_ref_model.h").is_file()
    main_cpp = (project / "src" / "main.cpp").read_text()
    assert "#include <KwsApp.h>" in main_cpp and "void setup()" in main_cpp
    assert not list(project.rglob("main.c")), "the program starts in src/main.cpp"


def check_baremetal(project: Path, board: str) -> None:
    ld = (project / "linker.ld").read_text()
    b = get_board(board)
    assert f"ORIGIN = 0x{b.flash.origin:08X}" in ld and f"ORIGIN = 0x{b.ram.origin:08X}" in ld
    assert "-Werror" in (project / "Makefile").read_text()


CHECKS = {"zephyr": check_zephyr, "arduino": check_arduino, "cmsis": check_cmsis,
          "baremetal": check_baremetal, "platformio": check_platformio}


@pytest.mark.parametrize(("template", "board"), GENERATED)
def test_generate_structure(kws, tmp_path, template, board):
    project = generate(kws, tmp_path, template, board)
    common_checks(project, template, board)
    CHECKS[template](project, board)


def arm_gcc(*args: str, cxx: bool = False) -> None:
    tool = "arm-none-eabi-g++" if cxx else "arm-none-eabi-gcc"
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (./setup.sh installs it)")
    std = ["-std=gnu++17", "-fno-exceptions", "-fno-rtti"] if cxx else ["-std=c99"]
    proc = subprocess.run([tool, *std, "-O2", "-Wall", "-Wextra", "-Werror", "-c", *args],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def compile_all(project: Path, cpu: str, includes: list[Path], out: Path) -> None:
    flags = [*TARGETS[cpu].cflags.split(), *(f"-I{p}" for p in includes)]
    for n, src in enumerate(sorted(project.rglob("*.c"))):
        arm_gcc(*flags, str(src), "-o", str(out / f"c{n}.o"))
    for n, src in enumerate(sorted(project.rglob("*.cpp"))):
        arm_gcc(*flags, str(src), "-o", str(out / f"cpp{n}.o"), cxx=True)


def test_zephyr_sources_compile_against_stub_headers(kws, tmp_path):
    project = generate(kws, tmp_path, "zephyr", "nucleo_l4r5zi")
    compile_all(project, "cortex-m4", [STUBS / "zephyr", project / "src", project / "model"],
                tmp_path)


def test_arduino_sources_compile_against_stub_headers(kws, tmp_path):
    project = generate(kws, tmp_path, "arduino", "nano33ble")
    compile_all(project, "cortex-m4", [STUBS / "arduino", project / "src"], tmp_path)
    # The example sketch is C++ that includes the library header.
    sketch = project / "examples" / "KwsApp" / "KwsApp.ino"
    cpp = tmp_path / "sketch.cpp"
    cpp.write_text(sketch.read_text())
    arm_gcc(*TARGETS["cortex-m4"].cflags.split(), f"-I{STUBS / 'arduino'}",
            f"-I{project / 'src'}", str(cpp), "-o", str(tmp_path / "sketch.o"), cxx=True)


@pytest.mark.parametrize(("board", "cpu"), [("nucleo-l4r5zi", "cortex-m4"),
                                           ("rpi-pico", "cortex-m0plus")])
def test_platformio_sources_compile_against_stub_headers(kws, tmp_path, board, cpu):
    project = generate(kws, tmp_path, "platformio", board)
    lib = project / "lib" / "KwsApp" / "src"
    compile_all(project, cpu, [STUBS / "arduino", lib], tmp_path)


def test_unknown_template_lists_the_valid_ones(tmp_path, capsys):
    code = main(["generate", str(shared_model("kws_ref_model")), "--board", "nano33ble",
                 "--template", "mbed", "-o", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 6 and "unknown template 'mbed'" in err and "arduino" in err and "zephyr" in err
    assert not (tmp_path / "x").exists()


def test_template_not_offered_for_board(tmp_path, capsys):
    code = main(["generate", str(shared_model("kws_ref_model")), "--board", "nano33ble",
                 "--template", "cmsis", "-o", str(tmp_path / "x")])
    assert code == 3 and "arduino, zephyr" in capsys.readouterr().err


def test_existing_directory_is_never_clobbered(kws, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for extra in ([], ["--force"]):
        code = main(["generate", str(shared_model("kws_ref_model")), "--board", "mps2-an386",
                     "-o", str(mine), *extra])
        assert code == 6
        assert (mine / "notes.txt").read_text() == "keep me"
    assert "not made by edge-sdk" in capsys.readouterr().err


def test_force_replaces_a_generated_project(kws, tmp_path):
    project = generate(kws, tmp_path, "zephyr", "stm32f746g_disco")
    (project / "prj.conf").write_text("edited\n")
    edge_sdk.generate(kws, "stm32f746g_disco", project, template="zephyr", force=True)
    assert "CONFIG_SERIAL=y" in (project / "prj.conf").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kws_app"]


def test_arduino_library_name_must_not_shadow_the_core(kws, tmp_path):
    with pytest.raises(edge_sdk.EdgeSDKError, match="hide the core header"):
        edge_sdk.generate(kws, "nano33ble", tmp_path / "arduino", template="arduino")
