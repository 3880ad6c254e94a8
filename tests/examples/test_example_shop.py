"""The shop example end to end, in a real browser, through a TestFailover.

A Cacheyard service with a 3-member replication group (automatic failover),
the shop in a subprocess against its endpoints, and headless Chromium driven
by Selenium: the catalog (first view from the database, a reload from the
cache), a login through the form, the leaderboard; then TestFailover while
the browser keeps loading pages: every load must render its page with the
user still signed in, no error shown.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from group_helpers import (
    all_members_available,
    create_group,
    describe_group,
    primary_address,
    primary_id,
    reader_address,
    wait_group_available,
)
from group_helpers import connect as connect_node
from service_helpers import Service, free_port, wait_for

pytestmark = pytest.mark.timeout(120)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[2]
GROUP = "shop-e2e"

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="needs selenium (pip install selenium)"
)

from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service as ChromeService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402


@dataclass
class Shop:
    service: Service
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def _responds(url: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"the shop exited: {log.read_text(errors='replace')}")
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    service = Service(tmp_path / "service")
    service.start()
    process: subprocess.Popen[bytes] | None = None
    try:
        ec = service.client()
        create_group(ec, GROUP)
        group = wait_group_available(ec, GROUP, timeout=60)
        wait_for(lambda: all_members_available(ec, group), timeout=60)
        port = free_port()
        log = tmp_path / "shop.log"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "examples.shop",
                    "--primary",
                    primary_address(group),
                    "--reader",
                    reader_address(group),
                    "--port",
                    str(port),
                    "--database",
                    str(tmp_path / "shop.sqlite3"),
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _responds(f"{url}/login", process, log), timeout=30)
        yield Shop(service, url, process, log)
    finally:
        try:
            if process is not None:
                process.kill()
                process.wait(timeout=10)
        finally:
            service.down()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            f"needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=ChromeService(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def page_of(driver: Any) -> str:
    """The ``data-page`` of the rendered page ("" for anything else, e.g. an error)."""
    found = driver.find_elements(By.ID, "page")
    return str(found[0].get_attribute("data-page")) if found else ""


def text(driver: Any, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def submit(driver: Any, button_id: str, expect_page: str) -> None:
    """Click a form's button and wait for the page the redirect leads to."""
    driver.execute_script("document.documentElement.dataset.left = 'no'")
    driver.find_element(By.ID, button_id).click()

    def arrived(d: Any) -> bool:
        try:
            return bool(
                d.execute_script(
                    "return document.readyState === 'complete'"
                    " && document.documentElement.dataset.left === undefined"
                    " && document.getElementById('page') !== null"
                )
            )
        except WebDriverException:  # the old document went away under the script
            return False

    WebDriverWait(driver, 20).until(arrived)
    assert page_of(driver) == expect_page, driver.page_source


def log_in(driver: Any, url: str, username: str, password: str) -> None:
    driver.get(f"{url}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    submit(driver, "login-submit", "catalog")


def submit_score(driver: Any, url: str, score: int) -> None:
    driver.get(f"{url}/leaderboard")
    field = driver.find_element(By.ID, "score")
    field.clear()
    field.send_keys(str(score))
    submit(driver, "submit-score", "leaderboard")


def top_rows(driver: Any) -> list[list[str]]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#top tr")[1:]
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def test_shop_in_a_browser_through_a_failover(browser: Any, shop: Shop) -> None:
    url = shop.url
    # the catalog: a first view reads the database, a reload is served from the cache
    browser.get(f"{url}/products?page=2")
    assert page_of(browser) == "catalog", browser.page_source
    assert text(browser, "source") == "served from database"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#products tr")) == 11  # header + 10
    browser.refresh()
    assert text(browser, "source") == "served from cache"
    assert text(browser, "user") == "Not signed in"

    # a wrong password is refused; bob signs in and posts a score, then signs out
    browser.get(f"{url}/login")
    browser.find_element(By.ID, "username").send_keys("bob")
    browser.find_element(By.ID, "password").send_keys("not-his")
    submit(browser, "login-submit", "login")
    assert "Wrong user name or password" in text(browser, "login-error")
    log_in(browser, url, "bob", "canwefixit")
    assert text(browser, "user") == "Signed in as Bob Builder"
    submit_score(browser, url, 450)
    assert text(browser, "rank") == "Your rank: 1 (best score 450)"
    submit(browser, "logout", "catalog")
    assert text(browser, "user") == "Not signed in"

    # alice signs in; the session follows her from page to page
    log_in(browser, url, "alice", "wonderland")
    browser.get(f"{url}/products/7")
    assert page_of(browser) == "product"
    assert text(browser, "user") == "Signed in as Alice Liddell"
    browser.get(f"{url}/leaderboard")
    assert text(browser, "user") == "Signed in as Alice Liddell"
    assert text(browser, "rank") == "You are not on the board yet."
    submit_score(browser, url, 120)
    assert text(browser, "rank") == "Your rank: 2 (best score 120)"
    submit_score(browser, url, 300)
    assert text(browser, "rank") == "Your rank: 2 (best score 300)"
    submit_score(browser, url, 200)  # best-of: 300 stays
    assert text(browser, "rank") == "Your rank: 2 (best score 300)"
    assert top_rows(browser) == [["1", "bob", "450"], ["2", "alice", "300"]]

    # a price change through write-through: the product page and the catalog show it
    browser.get(f"{url}/products/7")
    browser.find_element(By.NAME, "price_cents").send_keys("1234")
    submit(browser, "set-price", "product")
    assert text(browser, "price") == "$12.34"
    assert text(browser, "source") == "served from cache"  # the write put it there
    browser.get(f"{url}/products?page=1")
    assert "$12.34" in text(browser, "products")

    # Replication is asynchronous: before failing over, make sure both replicas
    # have everything written so far (alice's session included). A write then
    # WAIT on one connection: replicas that acknowledged it have all before it.
    ec = shop.service.client()
    group = describe_group(ec, GROUP)
    old_primary = primary_id(group)
    node = connect_node(primary_address(group), timeout=10)
    try:
        node.set("shop-e2e:barrier", "1")
        assert int(node.wait(2, 5000)) == 2
    finally:
        node.close()

    # fail over while the browser keeps loading pages: every load renders its page
    pages = [
        ("/products?page=1", "catalog"),
        ("/leaderboard", "leaderboard"),
        ("/products/7", "product"),
        ("/products?page=3", "catalog"),
    ]
    loads: list[float] = []  # seconds per page load
    during: list[str] = []  # pages loaded before the failover was seen complete
    rounds = iter(range(10**6))

    def load_once() -> bool:
        """Load the next page and check it; True once the failover is complete."""
        path, expected = pages[next(rounds) % len(pages)]
        started = time.monotonic()
        try:
            browser.get(f"{url}{path}")
        except WebDriverException as exc:
            raise AssertionError(f"loading {path} failed: {exc}\n{shop.logs()}") from exc
        loads.append(time.monotonic() - started)
        assert page_of(browser) == expected, (path, browser.page_source, shop.logs())
        assert not browser.find_elements(By.ID, "error"), browser.page_source
        assert text(browser, "user") == "Signed in as Alice Liddell", path
        now = describe_group(ec, GROUP)
        done = (
            now["Status"] == "available"
            and primary_id(now) != old_primary
            and all_members_available(ec, now)
        )
        if not done:
            during.append(path)
        return done

    ec.test_failover(ReplicationGroupId=GROUP, NodeGroupId="0001")
    try:
        wait_for(load_once, timeout=60, interval=0)
        for _ in pages:  # and a round on the new primary
            load_once()
    finally:
        after = wait_group_available(ec, GROUP, timeout=60)
        wait_for(lambda: all_members_available(ec, after), timeout=60)
    assert during, "no page was loaded while the failover was in progress"
    # the session is still valid, and the board and the new price survived
    browser.get(f"{url}/leaderboard")
    assert text(browser, "user") == "Signed in as Alice Liddell"
    assert text(browser, "rank") == "Your rank: 2 (best score 300)"
    browser.get(f"{url}/products/7")
    assert text(browser, "price") == "$12.34"
    assert shop.process.poll() is None, shop.logs()
    print(
        f"{len(during)} page loads during the failover, {len(loads)} in all, "
        f"slowest {max(loads):.2f}s"
    )


def test_a_cache_that_stays_unreachable_shows_the_503_page(tmp_path: Path) -> None:
    import httpx2
    from examples.shop import app as shop_app

    from cacheyard.client.connect import CacheEndpoints
    from cacheyard.client.retry import NO_RETRY

    closed = free_port()  # nothing listens there
    endpoints = CacheEndpoints("127.0.0.1", closed)
    app = shop_app.create_app(endpoints, tmp_path / "shop.db", retry=NO_RETRY)

    async def scenario() -> None:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://shop") as client:
            answer = await client.get("/products")
            assert answer.status_code == 503
            assert "The cache is unavailable" in answer.text

    asyncio.run(scenario())
