"""Headless Debian Chromium driven by Selenium; nothing is downloaded at run time."""

import shutil
import warnings
from pathlib import Path

import pytest

from tests.flows.conftest import celery_worker, receiver, worker_env  # noqa: F401  (shared fixtures)

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"  # var/ is ignored by git


@pytest.fixture
def browser(request, tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        message = (
            "BROWSER TEST SKIPPED: Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
        )
        warnings.warn(message, stacklevel=2)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    if getattr(request.node, "failed", False):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOTS / f"{request.node.name}.png"))
    driver.quit()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        item.failed = True
    return report
