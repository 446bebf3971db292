"""A real browser (Debian's headless Chromium, driven by Selenium) logs into the Wagtail admin,
opens a tagged page, sees the suggested tag with its evidence, adds a tag, accepts the
suggestion, and the decisions reach the service. Never skipped: CI installs chromium.

AUTOTAG_UPDATE_SCREENSHOT=1 also writes the panel's screenshot to docs/wagtail-panel.png."""

import os
import shutil
import tempfile

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from wagtail_autotag.models import OutboxMessage, PageTag
from wagtail_pages import REPO, make_page, sample, wait_for, wait_for_tags


@pytest.fixture
def browser():
    profile = tempfile.mkdtemp(prefix="autotag-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                     "--window-size=1400,2400", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def click(browser, element) -> None:
    """Click as a person would, with the element scrolled clear of the editor's sticky footer."""
    browser.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element)
    try:
        element.click()
    except Exception:
        browser.save_screenshot("/tmp/autotag-browser-debug.png")
        raise


def test_editor_reviews_tags_in_the_admin_and_the_decision_reaches_the_service(autotag_service, site_root, live_server, browser, tmp_path):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("desk", "desk@example.com", "desk-password-1")
    page = make_page(site_root, sample("fa50-malaysia"))
    wait_for_tags(page)
    suggestion = PageTag.objects.get(page=page, kind="topic", status="suggested")  # a country may be suggested too
    assert suggestion.tag == "sanctions" and suggestion.evidence

    wait = WebDriverWait(browser, 30)
    browser.get(live_server.url + "/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("desk")
    browser.find_element(By.NAME, "password").send_keys("desk-password-1")
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait.until(EC.url_contains("/admin/"))
    wait.until(lambda d: "login" not in d.current_url)

    browser.get(f"{live_server.url}/admin/pages/{page.pk}/edit/")
    panel = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "[data-autotag-panel]")))
    suggested = panel.find_element(By.CSS_SELECTOR, ".autotag-group--suggested")
    assert "sanctions" in suggested.text
    for word in suggestion.evidence[:2]:
        assert word in suggested.text  # the evidence is shown with the suggestion
    topics_text = panel.find_element(By.CSS_SELECTOR, ".autotag-groups").text
    assert "arms-deals" in topics_text and "BY MODEL" in topics_text.upper()

    # add a region by hand: it shows as by editor
    Select(panel.find_element(By.CSS_SELECTOR, ".autotag-add select")).select_by_value("region")
    panel.find_element(By.CSS_SELECTOR, '.autotag-add [data-autotag-field="tag"]').send_keys("LY")
    click(browser, panel.find_element(By.CSS_SELECTOR, '.autotag-add [data-autotag-action="add"]'))
    wait.until(lambda d: "Added LY." in d.find_element(By.CSS_SELECTOR, "[data-autotag-panel]").text)
    panel = browser.find_element(By.CSS_SELECTOR, "[data-autotag-panel]")
    assert "BY EDITOR" in panel.find_element(By.CSS_SELECTOR, ".autotag-groups").text.upper()

    # the panel as an editor sees it, without the editor's sticky action bar drawn over it
    section = browser.execute_script("return arguments[0].closest('section') || arguments[0];", panel)
    browser.execute_script("document.querySelectorAll('footer').forEach(f => f.style.visibility = 'hidden');"
                           "arguments[0].scrollIntoView({block: 'start', behavior: 'instant'});", section)
    shot = tmp_path / "wagtail-panel.png"
    section.screenshot(str(shot))
    browser.execute_script("document.querySelectorAll('footer').forEach(f => f.style.visibility = '');")
    assert shot.stat().st_size > 10_000
    if os.environ.get("AUTOTAG_UPDATE_SCREENSHOT") == "1":
        shutil.copy(shot, REPO / "docs" / "wagtail-panel.png")

    # accept the suggestion
    panel = browser.find_element(By.CSS_SELECTOR, "[data-autotag-panel]")
    click(browser, panel.find_element(By.CSS_SELECTOR, '.autotag-group--suggested [data-autotag-action="accept"][data-tag="sanctions"]'))
    wait.until(lambda d: "Accepted sanctions." in d.find_element(By.CSS_SELECTOR, "[data-autotag-panel]").text)
    row = PageTag.objects.get(page=page, kind="topic", tag="sanctions")
    assert row.status == "applied" and row.by == "editor"
    feedback = wait_for(lambda: OutboxMessage.objects.filter(page_id=page.pk, kind="feedback", status="sent",
                                                             payload__decisions__0__tag="sanctions").first(), what="feedback taken")
    assert feedback.payload["decisions"][0]["decision"] == "accepted" and feedback.response["status"] == "stored"
    report = autotag_service.cli("feedback", "report", "--json")
    assert report.returncode == 0 and "sanctions" in report.stdout

    # "Suggest tags" previews the current draft through POST /v1/tag
    click(browser, browser.find_element(By.CSS_SELECTOR, '[data-autotag-panel] [data-autotag-action="suggest"]'))
    wait.until(lambda d: "Draft preview" in d.find_element(By.CSS_SELECTOR, "[data-autotag-panel]").text)
    preview = browser.find_element(By.CSS_SELECTOR, ".autotag-group--preview").text
    assert "arms-deals" in preview and "on the page" in preview.lower()
