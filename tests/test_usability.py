"""What a new user meets first (issue 15): inputs in the shapes people have, boards that cannot
run, exit codes, units. Each test is a case that failed before its fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.cli import main
from edge_sdk.project.boards import get_board
from tests.conftest import qemu_serving, reference
from tests.test_ops import CASES


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory):
    """A convolution with input [1, 6, 7, 2] (NHWC)."""
    path = tmp_path_factory.mktemp("conv") / "conv.tflite"
    path.write_bytes(CASES["conv_per_tensor_relu"]())
    return path


def test_run_takes_a_batch_along_the_batch_axis(conv_model, tmp_path, capsys):
    """[N, H, W, C] for a [1, H, W, C] model: N inferences, outputs [N, ...] (before: every
    inference ran, then a traceback, and no output was written)."""
    xs = np.random.default_rng(1).integers(-128, 128, (3, 6, 7, 2), dtype=np.int8)
    np.save(tmp_path / "x.npy", xs)
    assert main(["run", str(conv_model), "--board", "host", "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy")]) == 0
    got = np.load(tmp_path / "y.npy")
    want = reference(conv_model, xs[:, None])  # the oracle takes one [1, 6, 7, 2] at a time
    assert got.shape == (3, *want.shape[2:])
    np.testing.assert_array_equal(got, want[:, 0])


def test_one_sample_without_its_batch_axis_keeps_the_model_shape(conv_model, tmp_path):
    x = np.random.default_rng(2).integers(-128, 128, (6, 7, 2), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(conv_model), "--board", "host", "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy")]) == 0
    got = np.load(tmp_path / "y.npy")
    want = reference(conv_model, x[None, None])[0]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_channels_first_input_is_refused_with_the_transpose(conv_model, tmp_path, capsys):
    """An NCHW array holds the right number of values; before, it ran and the outputs were
    wrong without a word."""
    np.save(tmp_path / "x.npy", np.zeros((1, 2, 6, 7), np.int8))
    assert main(["run", str(conv_model), "--board", "host", "--input",
                 str(tmp_path / "x.npy")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "shape [1, 2, 6, 7]" in err and "[6, 7, 2]" in err and "transpose(0, 2, 3, 1)" in err


def test_a_shape_that_fits_no_layout_is_refused_before_any_work(conv_model, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((12, 7), np.int8))  # 84 values, as [6, 7, 2] has
    work = tmp_path / "work"
    assert main(["run", str(conv_model), "--board", "host", "--input", str(tmp_path / "x.npy"),
                 "--workdir", str(work)]) != 0
    assert "shape [12, 7]" in capsys.readouterr().err
    assert not work.exists()  # refused before the compile and build


@pytest.mark.parametrize("board", ["nucleo-l4r5zi", "rpi-pico", "stm32f746g-disco"])
def test_a_real_board_run_cannot_start_gets_one_line(conv_model, board, capsys):
    """Before: the build failed inside make with advice that could not work."""
    assert main(["run", str(conv_model), "--board", board]) == 6
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "run-remote --port" in err and board in err


def generate(model, tmp_path, board: str, template: str):
    import edge_sdk
    from edge_sdk.project.generate import generate_project

    b = get_board(board)
    return generate_project(edge_sdk.api.compile_for(edge_sdk.load(model), b), b,
                            tmp_path / f"{template}_{board}", template=template)


def test_zephyr_projects_say_how_each_board_is_flashed_and_reached(conv_model, tmp_path):
    """Before: every Zephyr README said `west flash` and /dev/ttyACM0 (wrong for the Pico, the
    Nano 33 BLE and the emulated MPS3), and prj.conf set CONFIG_FPU=y on the Cortex-M0+."""
    pico = generate(conv_model, tmp_path, "rpi-pico", "zephyr")
    readme = (pico / "README.rst").read_text()
    assert "zephyr.uf2" in readme and "--port /dev/ttyUSB0" in readme
    assert "\n   west flash\n" not in readme and "/dev/ttyACM0 --model" not in readme
    assert "CONFIG_FPU=y" not in (pico / "prj.conf").read_text()

    nano = (generate(conv_model, tmp_path, "nano33ble", "zephyr") / "README.rst").read_text()
    assert "double-tap RESET" in nano and "--port /dev/ttyUSB0" in nano

    mps3 = (generate(conv_model, tmp_path, "mps3-an547", "zephyr") / "README.rst").read_text()
    assert "-M mps3-an547" in mps3 and "--port socket://127.0.0.1:4444" in mps3
    assert "\n   west flash" not in mps3

    nrf = generate(conv_model, tmp_path, "nrf52840dk", "zephyr")
    assert "CONFIG_FPU=y" in (nrf / "prj.conf").read_text()
    assert "--port /dev/ttyACM0" in (nrf / "README.rst").read_text()


def test_flash_uploads_an_arduino_project_with_arduino_cli(conv_model, tmp_path, capsys):
    """Before: refused (the board's default runner, west, flashes Zephyr projects only)."""
    project = generate(conv_model, tmp_path, "nano33ble", "arduino")
    assert main(["flash", str(project), "--dry-run"]) == 6
    assert "--port" in capsys.readouterr().err
    assert main(["flash", str(project), "--port", "/dev/ttyACM0", "--dry-run"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("arduino-cli compile --upload --port /dev/ttyACM0 --fqbn "
                           "arduino:mbed_nano:nano33ble --library ")
    library = json.loads((project / "edge_project.json").read_text())["library"]
    assert line.endswith(f"{project}/examples/{library}")


def test_flash_qemu_says_where_its_uart_is_and_sigterm_ends_qemu(conv_model, tmp_path):
    """Before: the UART's address came only after QEMU exited, and SIGTERM to edge-sdk left
    QEMU running."""
    import signal
    import subprocess
    import sys
    import time

    from edge_sdk.device.launch import _free_port

    project = generate(conv_model, tmp_path, "mps2-an386", "baremetal")
    assert main(["build", str(project)]) == 0
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edge_sdk.cli", "flash", str(project),
                             "--runner", "qemu", "--port", str(port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert f"UART on socket://127.0.0.1:{port}" in lines[1]
        time.sleep(1.0)
        qemu = subprocess.run(["pgrep", "-f", f"tcp:127.0.0.1:{port},"], capture_output=True,
                              text=True).stdout.split()
        assert qemu, "QEMU did not start"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        time.sleep(0.5)
        assert subprocess.run(["pgrep", "-f", f"tcp:127.0.0.1:{port},"]).returncode == 1
    finally:
        proc.kill()


def test_benchmark_on_qemu_over_its_port_and_on_the_host(conv_model, tmp_path, capsys):
    """`edge-sdk benchmark`: QEMU started by the SDK, the same firmware flashed (here: QEMU
    started by hand) and reached over its serial port, and the host build. QEMU's counts are
    instructions, the same on both paths and on every run; the host's are time."""
    out = tmp_path / "qemu.json"
    assert main(["benchmark", str(conv_model), "--board", "mps2-an386", "--runs", "3",
                 "--json", str(out)]) == 0
    qemu_run = json.loads(out.read_text())
    assert qemu_run["unit"] == "instructions" and qemu_run["seconds"] is None
    assert qemu_run["min"] == qemu_run["median"] == qemu_run["max"] > 0
    assert "instructions" in capsys.readouterr().out

    project = generate(conv_model, tmp_path, "mps2-an386", "baremetal")
    assert main(["build", str(project)]) == 0
    with qemu_serving(get_board("mps2-an386"), project / "build" / "app.elf") as port:
        assert main(["benchmark", str(conv_model), "--board", "mps2-an386", "--runs", "3",
                     "--port", f"socket://127.0.0.1:{port}", "--json", str(out)]) == 0
    remote = json.loads(out.read_text())
    assert remote["where"].startswith("serial socket://")
    assert (remote["unit"], remote["median"]) == ("instructions", qemu_run["median"])

    assert main(["benchmark", str(conv_model), "--runs", "5", "--json", str(out)]) == 0
    host = json.loads(out.read_text())
    assert host["unit"] == "ns" and 0 < host["min"] <= host["median"] <= host["max"]
    assert host["seconds"]["median"] == host["median"] / 1e9


def test_benchmark_refuses_what_would_not_mean_anything(conv_model, capsys):
    assert main(["benchmark", str(conv_model), "--board", "rpi4"]) == 6
    assert "--host" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # now refused by the argument parser itself
        main(["benchmark", str(conv_model), "--runs", "0"])
    assert exit_.value.code == 6 and "takes 1 to 100,000" in capsys.readouterr().err


def smooth_samples(n: int, seed: int = 0, scale: float = 1.0) -> list[np.ndarray]:
    """Calibration data that looks like a signal (neighbouring values correlate), not noise."""
    rng = np.random.default_rng(seed)
    base = np.cumsum(rng.normal(0, 0.3, (n, 108)), axis=1)
    return [(scale * np.tanh(b)).reshape(1, 6, 6, 3).astype(np.float32) for b in base]


def test_quantize_warns_about_what_makes_int8_untrustworthy(tmp_path, capsys):
    """Before: a layer at a few dB SQNR, 5 calibration samples or pure noise passed silently,
    and every single-output model got a top-1 figure, classifier or not."""
    from tests.test_quantize import float_conv_model

    model = tmp_path / "f.tflite"
    model.write_bytes(float_conv_model([]))
    good = tmp_path / "good.npy"
    np.save(good, np.stack(smooth_samples(200)))
    out = tmp_path / "q.tflite"
    assert main(["quantize", str(model), "--calibration", str(good), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "top-1" not in captured.out

    np.save(tmp_path / "few.npy", np.stack(smooth_samples(5)))
    np.save(tmp_path / "noise.npy", np.random.default_rng(1).normal(0, 1, (200, 1, 6, 6, 3))
            .astype(np.float32))
    np.save(tmp_path / "loud.npy", np.stack(smooth_samples(50, seed=3, scale=40.0)))
    cases = {("few.npy", None): "only 5 calibration samples",
             ("noise.npy", None): "looks like random noise",
             ("good.npy", "loud.npy"): "below 10 dB"}
    for (calibration, evaluation), message in cases.items():
        argv = ["quantize", str(model), "--calibration", str(tmp_path / calibration),
                "-o", str(out)]
        if evaluation:  # ranges from quiet data, judged on loud data: the layer clips
            argv += ["--evaluation", str(tmp_path / evaluation)]
        assert main(argv) == 0
        err = capsys.readouterr().err
        assert "edge-sdk: warning: " in err and message in err, (calibration, err)


def test_boards_table_is_aligned_with_human_sizes_and_has_json(capsys):
    assert main(["boards"]) == 0
    lines = capsys.readouterr().out.splitlines()
    starts = {line.index(" cortex-m4 ") for line in lines if " cortex-m4 " in line}
    assert len(starts) == 1  # one column, whatever the board name's length
    pico = next(line for line in lines if line.startswith("rpi-pico "))
    assert "2.0 MiB" in pico and "264.0 KiB" in pico and "run-remote" in pico
    assert main(["boards", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "edge-sdk/1"
    rows = doc["boards"]
    assert {r["board"] for r in rows} >= {"host", "mps2-an386", "rpi-pico", "rpi4"}
    assert next(r for r in rows if r["board"] == "mps2-an386")["run"] == "here (QEMU)"


def test_every_json_document_has_the_schema_and_one_vocabulary(conv_model, tmp_path, capsys):
    """compile's report said ``flash_bytes_estimate`` where run's said ``flash_bytes``, boards
    said ``flash_bytes`` for the board's capacity, and no document had a schema version."""
    docs = {}
    for name, argv in (("compile", ["compile", str(conv_model), "-o", str(tmp_path / "c"),
                                    "--json"]),
                       ("run", ["run", str(conv_model), "--json", "--report",
                                str(tmp_path / "run.json")]),
                       ("inspect", ["inspect", str(conv_model), "--json"]),
                       ("report", ["report", str(tmp_path / "c"), "--json"]),
                       ("boards", ["boards", "--json"])):
        assert main(argv) == 0, name
        docs[name] = json.loads(capsys.readouterr().out)
    docs["report.json"] = json.loads((tmp_path / "c" / "report.json").read_text())
    docs["run --report"] = json.loads((tmp_path / "run.json").read_text())
    assert {k: d["schema"] for k, d in docs.items()} == {k: "edge-sdk/1" for k in docs}
    for name in ("compile", "report.json", "report"):
        assert docs[name]["flash_bytes"] == docs[name]["weights_bytes"], name
        assert docs[name]["flash_basis"].startswith("estimate"), name
    for name in ("run", "run --report"):
        assert docs[name]["flash_bytes"] > docs[name]["weights_bytes"], name
        assert docs[name]["flash_basis"].startswith("measured"), name
    assert not any("flash_bytes_estimate" in d for d in docs.values())
    assert docs["inspect"]["estimate"]["arena_bytes"] == docs["compile"]["arena_bytes"]
    host = next(r for r in docs["boards"]["boards"] if r["board"] == "mps2-an386")
    assert host["flash_capacity_bytes"] == 4 << 20 and "flash_bytes" not in host


def test_json_quiet_and_verbose(conv_model, tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["compile", str(conv_model), "-o", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["output"] == str(out) and rep["layers"][0]["op"] == "CONV_2D"

    x = np.random.default_rng(4).integers(-128, 128, (6, 7, 2), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(conv_model), "--input", str(tmp_path / "x.npy"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    np.testing.assert_array_equal(np.array(result["outputs"][0]).reshape(-1),
                                  reference(conv_model, x[None, None])[0].reshape(-1))
    assert result["timer"]["unit"] == "ns"

    assert main(["-q", "run", str(conv_model)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert main(["run", str(conv_model), "--board", "mps2-an386", "-v"]) == 0
    err = capsys.readouterr().err
    for step in ("compiling conv for mps2-an386", "building the firmware", "starting QEMU"):
        assert f"edge-sdk: {step}" in err and "done in" in err


@pytest.mark.parametrize("locale_env", [{"PYTHONIOENCODING": "ascii"},
                                        {"LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0",
                                         "PYTHONUTF8": "0"}])
def test_an_ascii_terminal_gets_the_summary_and_quiet_gets_nothing(conv_model, locale_env):
    """CI images, cron and ssh without LANG give Python an ASCII stdout: "µs" crashed `run`
    there, and -q crashed even though it prints nothing (its sink used the locale too)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONIO"))}
    env.update(locale_env)
    for argv, expect in ((["run", str(conv_model)], " us per inference (host wall clock)"),
                         (["-q", "run", str(conv_model)], "")):
        done = subprocess.run([sys.executable, "-m", "edge_sdk.cli", *argv], env=env,
                              capture_output=True, text=True, encoding="utf-8", check=False)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        assert expect in done.stdout if expect else done.stdout == ""


# Device names of ARM::Cortex_DFP (ARM.Cortex_DFP.pdsc, 1.x): csolution resolves a target's
# `device:` against these; ARMCM4_DP and friends are not among them.
CORTEX_DFP_DEVICES = {"ARMCM0", "ARMCM0P", "ARMCM1", "ARMCM3", "ARMCM4", "ARMCM7", "ARMCM23",
                      "ARMCM33", "ARMCM35P", "ARMCM52", "ARMCM55", "ARMCM85"}


def test_cmsis_boards_name_real_devices_and_ship_their_support():
    from edge_sdk.project.boards import all_boards
    from edge_sdk.project.generate import FIRMWARE_DIR

    cmsis = [b for b in all_boards().values() if "cmsis" in b.templates]
    assert len(cmsis) >= 8
    for b in cmsis:
        if b.cmsis.pack == "ARM::Cortex_DFP":
            assert b.cmsis.device in CORTEX_DFP_DEVICES, b.name
        assert (FIRMWARE_DIR / "cmsis_boards" / f"{b.cmsis.support}.c").is_file(), b.name


def test_cmsis_projects_set_up_clock_caches_and_uart(conv_model, tmp_path):
    """The STM32F746 project said 216 MHz and ran at 16 MHz with caches off and no UART."""
    import yaml

    disco = generate(conv_model, tmp_path, "stm32f746g-disco", "cmsis")
    files = [f["file"] for g in yaml.safe_load(
        next(disco.glob("*.cproject.yml")).read_text(encoding="utf-8"))["project"]["groups"]
        for f in g["files"]]
    assert "firmware/edge_board_stm32f746g_disco.c" in files
    support = (disco / "firmware" / "edge_board_stm32f746g_disco.c").read_text(encoding="utf-8")
    for step in ("RCC_CFGR_SW_PLL", "FLASH_ACR_LATENCY_7WS", "PWR_CR1_ODEN",
                 "SCB_EnableICache()", "SCB_EnableDCache()", "USART1->BRR"):
        assert step in support
    readme = (disco / "README.md").read_text(encoding="utf-8")
    assert "216 MHz" in readme and "USART1 on PA9/PB7" in readme


def build_cmsis_sources(project: Path, board, out: Path) -> Path:
    """Compile what edge-sdk put in a CMSIS project with arm-none-eabi-gcc, -Werror. cbuild and
    the packs cannot be had here (no network), so the two files a DFP would add stand in:
    the vector table is the bare-metal port's, and SystemCoreClock starts at the 25 MHz that
    ARM's generic system_ARMCMx.c gives it (the support file must correct it)."""
    import subprocess

    from edge_sdk.project.generate import FIRMWARE_DIR

    (out / "system_dfp.c").write_text("#include <stdint.h>\nuint32_t SystemCoreClock = "
                                      "25000000u;\nvoid SystemCoreClockUpdate(void) {}\n",
                                      encoding="utf-8")
    sources = [*project.glob("model/*.c"), *project.glob("firmware/*.c"),
               FIRMWARE_DIR / "port" / "cmsdk" / "startup_cortexm.c", out / "system_dfp.c"]
    elf = out / "app.elf"
    subprocess.run(["arm-none-eabi-gcc", *board.target.cflags.split(), "-std=c99", "-O2",
                    "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
                    f"-I{project / 'model'}", f"-I{project / 'firmware'}", *map(str, sources),
                    "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
                    "-T", str(out / "linker.ld"), "-lm", "-o", str(elf)], check=True)
    return elf


@pytest.mark.parametrize("board_name", ["mps2-an386", "mps2-an500", "mps3-an547"])
def test_a_cmsis_project_runs_bit_exact_on_its_emulated_board(conv_model, tmp_path, board_name,
                                                              capsys):
    """Our part of the CMSIS project (port, the CMSDK UART support file with its cache set-up
    on the M7 and M55, the model) on QEMU, reached over its UART as a flashed board is."""
    import shutil

    board = get_board(board_name)
    project = generate(conv_model, tmp_path, board_name, "cmsis")
    assert "firmware/edge_board_cmsdk.c" in next(project.glob("*.cproject.yml")).read_text(
        encoding="utf-8")
    bare = generate(conv_model, tmp_path / "bare", board_name, "baremetal")
    shutil.copy(bare / "linker.ld", tmp_path / "linker.ld")
    elf = build_cmsis_sources(project, board, tmp_path)

    x = np.random.default_rng(9).integers(-128, 128, (2, 6, 7, 2), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    with qemu_serving(board, elf) as port:
        assert main(["run-remote", "--port", f"socket://127.0.0.1:{port}", "--board",
                     board_name, "--model", str(conv_model), "--input", str(tmp_path / "x.npy"),
                     "--output", str(tmp_path / "y.npy"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy").reshape(-1),
                                  reference(conv_model, x[:, None]).reshape(-1))
    # QEMU's DWT is there but does not count: the port marks its SysTick ticks as an emulator's.
    timer = result["timer"]
    assert (timer["kind"], timer["timer_hz"], timer["unit"]) == ("systick-emulated", board.clock_hz,
                                                                 "instructions")
    assert all(n > 0 for n in timer["per_inference"])


def test_a_reader_that_leaves_early_is_no_crash(conv_model):
    """`edge-sdk inspect M | head` ended in "internal error (BrokenPipeError)" and a crash file;
    now it stops quietly with the shell's status for SIGPIPE."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the first line
    try:
        done = subprocess.run([sys.executable, "-m", "edge_sdk.cli", "inspect", str(conv_model)],
                              stdout=write_end, capture_output=False, stderr=subprocess.PIPE,
                              text=True, check=False)
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == ""
