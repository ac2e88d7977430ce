"""JupyterLab in a real browser: `make lab` on a copy of notebooks/ (build/browser/notebooks), every
notebook opened in headless Chromium with the kit's kernel, one run through the UI from first cell
to last. Screenshots are kept in build/browser/.

Debian's chromium and chromium-driver drive it (make test installs them as root); nothing downloads a
browser. Needs no model server: the notebook run through the UI, 02, works in-process.
"""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from kit import REPO_ROOT

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
KERNEL = "docker-model kit"
KERNELSPEC = '{"name": "docker-model-kit", "display_name": "docker-model kit", "language": "python"}'
NOTEBOOKS = sorted(path.name for path in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
FIRST = "00_check_setup.ipynb"  # the one `make lab` opens on
RUN_THROUGH_UI = "02_test_model_locally.ipynb"  # in-process only: changes no server's state
OUT = REPO_ROOT / "build" / "browser"
NEWS_PROMPT = "Would you like to get notified about official Jupyter news?"
# JupyterLab re-renders cells as they scroll in and out of view: an element found may be gone a moment later.
GONE = (NoSuchElementException, StaleElementReferenceException)


@pytest.fixture(scope="module")
def lab():
    """`make lab` on a fresh copy of notebooks/, with fresh user settings and workspaces (what a new
    user sees), on a free port; shut down again, kernels included, whatever the tests did."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.skip(f"no {' and '.join(missing)}: install Debian's packages, `sudo apt-get install chromium "
                    "chromium-driver` (make test installs them when run as root)")
    shutil.rmtree(OUT, ignore_errors=True)
    shutil.copytree(REPO_ROOT / "notebooks", OUT / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_TOKEN=token, JUPYTERLAB_SETTINGS_DIR=str(OUT / "lab" / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(OUT / "lab" / "workspaces"))
    # -o setup: this test runs in the venv `make setup` made; lab's prerequisite must not rebuild it under it.
    command = ["make", "--no-print-directory", "-o", "setup", "lab", f"LAB_DIR={OUT / 'notebooks'}",
               f"LAB_PORT={port}", "LAB_ARGS=--no-browser"]
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"token {token}"}
    with open(OUT / "lab.log", "w") as log:
        server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            wait_until_up(server, base, auth)
            yield {"base": base, "token": token}
        finally:
            stop(server, base, auth)


@pytest.fixture(scope="module")
def browser(lab):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # --no-sandbox: Chromium refuses to start as root without it, and many containers and CI machines
    # forbid the user namespaces its sandbox needs; the only page it loads is the kit's lab on localhost.
    # --disable-dev-shm-usage: containers often give /dev/shm 64 MB, too little for Chromium.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    # With the driver named, Selenium Manager has nothing to find; offline, it would download nothing anyway.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")
        driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        driver.get(f"{lab['base']}/lab/tree/{FIRST}?reset&token={lab['token']}")
        notebook_panel(driver, FIRST, from_file_browser=False)  # the lab has loaded, on its first notebook
        yield driver
    finally:
        driver.quit()  # chromedriver and every Chromium process with it


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_notebook_opens_with_the_kits_kernel_idle(browser, name):
    panel = notebook_panel(browser, name)
    idle = wait_until_idle(browser, panel)
    screenshot = OUT / f"{Path(name).stem}.png"
    browser.save_screenshot(str(screenshot))

    assert not in_the_way(browser), f"{name}: something asks for an answer first: {in_the_way(browser)}"
    assert kernel_state(panel)[0] == KERNEL, (
        f"{name} opens with the kernel {kernel_state(panel)[0]!r}, not {KERNEL!r}: its metadata kernelspec "
        f"should be {KERNELSPEC}, and `make setup` installs that kernel")
    assert idle, f"{name}: its kernel is {kernel_state(panel)[1]!r}, not idle; see {screenshot}"
    cells = panel.find_elements(By.CSS_SELECTOR, ".jp-Cell")
    assert cells and cells[0].text.strip(), f"{name}: no cell rendered; see {screenshot}"
    assert not tracebacks(panel), f"{name} shows an error: {tracebacks(panel)[0]}"


def test_a_notebook_runs_from_first_cell_to_last_through_the_ui(browser):
    panel = notebook_panel(browser, RUN_THROUGH_UI)
    idle = wait_until_idle(browser, panel)
    assert not in_the_way(browser), f"{RUN_THROUGH_UI}: something asks for an answer first: {in_the_way(browser)}"
    assert idle, f"{RUN_THROUGH_UI}: its kernel is {kernel_state(panel)[1]!r}, not idle"
    saved = OUT / "notebooks" / RUN_THROUGH_UI
    code_cells = sum(cell["cell_type"] == "code" for cell in json.loads(saved.read_text())["cells"])

    # The committed outputs go first, so that whatever shows afterwards comes from this run.
    menu_item(browser, "Edit", "editmenu:clear-all").click()
    wait_for(browser, lambda: not any(prompt.isdigit() for prompt in prompts_in_view(panel)), 10,
             f"{RUN_THROUGH_UI}: Edit > Clear Outputs of All Cells left outputs")
    menu_item(browser, "Run", "runmenu:run-all").click()
    wait_for(browser, lambda: run_started(panel), 10, f"{RUN_THROUGH_UI}: Run > Run All Cells started nothing")
    assert wait_until_idle(browser, panel, seconds=90), f"{RUN_THROUGH_UI} still runs after 90 s"
    browser.save_screenshot(str(OUT / f"{saved.stem}-run.png"))
    assert not tracebacks(panel), f"{RUN_THROUGH_UI} failed in the browser: {tracebacks(panel)[0]}"

    # JupyterLab renders only the cells in view: the whole run is read from the notebook, saved.
    menu_item(browser, "File", "docmanager:save").click()
    wait_for(browser, lambda: "jp-mod-dirty" not in current_tab(browser).get_attribute("class"), 15,
             f"{RUN_THROUGH_UI} was not saved by File > Save Notebook")
    cells = json.loads(saved.read_text())["cells"]
    errors = [output for cell in cells for output in cell.get("outputs", [])
              if output["output_type"] == "error"
              or (output.get("name") == "stderr" and "Traceback" in "".join(output["text"]))]
    assert not errors, f"{RUN_THROUGH_UI} failed in the browser: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    counts = [cell["execution_count"] for cell in cells if cell["cell_type"] == "code"]
    assert counts == list(range(1, code_cells + 1)), f"{RUN_THROUGH_UI}: not every cell ran, in order: {counts}"


def test_no_news_prompt(browser):
    """JupyterLab 4.3 asks once whether to fetch Jupyter's news; `make setup` answers no for the kit's lab."""
    notebook_panel(browser, FIRST)
    assert NEWS_PROMPT not in browser.page_source, (
        "JupyterLab asks about Jupyter's news: `make setup` writes the answer to "
        "venvs/notebooks/share/jupyter/lab/settings/overrides.d/docker-model-kit.json")


# The lab's process

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(server, base, auth, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"`make lab` exited with {server.returncode}: see {OUT / 'lab.log'}")
        try:
            if requests.get(f"{base}/api/status", headers=auth, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(f"JupyterLab did not answer on {base} within {seconds} s: see {OUT / 'lab.log'}")


def stop(server, base, auth):
    """Jupyter's own shutdown first, which stops the kernels (they run in sessions of their own);
    then signals to the process group of make and JupyterLab. At most about 40 s."""
    try:
        requests.post(f"{base}/api/shutdown", headers=auth, timeout=10)
    except requests.RequestException:
        pass
    for sig, seconds in ((None, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if sig is not None:
            try:
                os.killpg(server.pid, sig)
            except ProcessLookupError:  # all gone already
                pass
        try:
            server.wait(seconds)
            return
        except subprocess.TimeoutExpired:
            continue


# What the page shows

def notebook_panel(driver, name, from_file_browser=True):
    """The notebook's panel, made the current tab: opened from the file browser if not open yet."""
    tab = ("//div[contains(@class, 'lm-DockPanel')]//li[contains(@class, 'lm-TabBar-tab')]"
           f"[.//div[contains(@class, 'lm-TabBar-tabLabel')][text()='{name}']]")
    if from_file_browser and not driver.find_elements(By.XPATH, tab):
        entry = f"//li[contains(@class, 'jp-DirListing-item')][.//span[text()='{name}']]"
        entry = wait_for(driver, lambda: shown(driver, entry), 30, f"{name} is not in JupyterLab's file browser")
        ActionChains(driver).double_click(entry).perform()
    tab = wait_for(driver, lambda: shown(driver, tab), 30, f"{name} did not open in a tab")
    if "lm-mod-current" not in tab.get_attribute("class"):
        tab.click()
    return driver.find_element(By.ID, tab.get_attribute("data-id"))


def current_tab(driver):
    return driver.find_element(By.CSS_SELECTOR, ".lm-DockPanel .lm-TabBar-tab.lm-mod-current")


def menu_item(driver, menu, command):
    driver.find_element(By.XPATH, f"//li[contains(@class, 'lm-MenuBar-item')][.//div[text()='{menu}']]").click()
    return wait_for(driver, lambda: driver.find_element(By.CSS_SELECTOR, f'.lm-Menu-item[data-command="{command}"]'),
                    10, f"no {command} in the {menu} menu")


def kernel_state(panel):
    """The kernel's name and status as the notebook's toolbar shows them."""
    name = panel.find_element(By.CSS_SELECTOR, ".jp-KernelName").text
    status = panel.find_element(By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator").get_attribute("data-status")
    return name, status


def prompts_in_view(panel):
    """The execution counts of the code cells JupyterLab has rendered: '' not run, '*' waiting or running."""
    return [p.text.strip("[]: ") for p in panel.find_elements(By.CSS_SELECTOR, ".jp-CodeCell .jp-InputPrompt")]


def run_started(panel):
    prompts = prompts_in_view(panel)
    return (kernel_state(panel)[1] == "busy" or "*" in prompts or any(p.isdigit() for p in prompts)
            or tracebacks(panel))


def tracebacks(panel):
    """Error and stderr output areas with a traceback, among the cells JupyterLab has rendered."""
    stderr = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'  # errors too
    areas = panel.find_elements(By.CSS_SELECTOR, stderr)
    return [area.text for area in areas if "Traceback" in area.text]


def in_the_way(driver):
    """Dialogs and notifications a user would have to answer before working: none is expected."""
    dialogs = [d.text for d in driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog")]
    toasts = [t.text for t in driver.find_elements(By.CSS_SELECTOR, ".Toastify__toast")]
    return dialogs + toasts


def shown(driver, xpath):
    return next((e for e in driver.find_elements(By.XPATH, xpath) if e.is_displayed()), None)


def wait_for(driver, condition, seconds, what):
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.2, ignored_exceptions=GONE).until(lambda _: condition())
    except TimeoutException:
        pytest.fail(f"{what} (after {seconds} s)")


def wait_until_idle(driver, panel, seconds=30, steady=1.0):
    """True once the kernel has stayed idle, with no cell waiting to run, for `steady` s (it passes
    through idle while it connects, and between cells); False after `seconds`, or as soon as a dialog
    or notification asks for an answer."""
    deadline, idle_since = time.monotonic() + seconds, None
    while time.monotonic() < deadline and not in_the_way(driver):
        try:
            idle = kernel_state(panel)[1] == "idle" and "*" not in prompts_in_view(panel)
        except GONE:
            idle = False
        idle_since = (idle_since or time.monotonic()) if idle else None
        if idle_since and time.monotonic() - idle_since >= steady:
            return True
        time.sleep(0.1)
    return False
