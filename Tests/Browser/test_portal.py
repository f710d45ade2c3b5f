"""The marketplace portal in a real headless Chromium: the catalog with search and facets
giving what `setu catalog` gives, publisher and API pages, the listing page, catalog.json,
keyboard navigation to the search box and the results, basic accessibility, no console
error, and screenshots that are not blank."""
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

import support


def catalog(repo, *arguments):
    """`setu catalog … --format json`: the API ids, and the whole text."""
    text = subprocess.run([support.SETU, "catalog", "--repo", repo, "--format", "json", *arguments], check=True,
                          capture_output=True, text=True).stdout
    return [entry["id"] for entry in json.loads(text)], text


def results(driver):
    return [link.get_attribute("href").split("/-/apis/")[1] for link in driver.find_elements(By.CSS_SELECTOR, "#results h3 a")]


def luminance(colour):
    parts = [int(value) / 255 for value in re.findall(r"[\d.]+", colour)[:3]]
    linear = [part / 12.92 if part <= 0.03928 else ((part + 0.055) / 1.055) ** 2.4 for part in parts]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(driver, element):
    colour = element.value_of_css_property("color")
    background = driver.execute_script(
        "let e = arguments[0]; while (e) { const c = getComputedStyle(e).backgroundColor;"
        " if (c && c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c; e = e.parentElement; } return 'rgb(255, 255, 255)';",
        element)
    light, dark = sorted([luminance(colour), luminance(background)], reverse=True)
    return (light + 0.05) / (dark + 0.05)


def accessibility(driver, checks, page):
    """Headings in order with one h1, a label for every field, readable contrast, a visible focus."""
    levels = [int(heading.tag_name[1]) for heading in driver.find_elements(By.CSS_SELECTOR, "h1, h2, h3, h4, h5, h6")]
    checks.expect(levels.count(1) == 1, "%s: one h1 (%r)" % (page, levels))
    checks.expect(all(b - a <= 1 for a, b in zip(levels, levels[1:])), "%s: no heading level skipped: %r" % (page, levels))
    for field in driver.find_elements(By.CSS_SELECTOR, "input:not([type=hidden]), select, textarea"):
        identifier = field.get_attribute("id")
        labelled = field.get_attribute("aria-label") or (identifier and driver.find_elements(By.CSS_SELECTOR, "label[for='%s']" % identifier))
        checks.expect(bool(labelled), "%s: the field %s has a label" % (page, identifier or field.get_attribute("name")))
    for element in driver.find_elements(By.CSS_SELECTOR, "h1, p, a, td, label, code")[:40]:
        if element.is_displayed() and element.text.strip():
            ratio = contrast(driver, element)
            checks.expect(ratio >= 4.5, "%s: contrast of %r is %.2f, below 4.5" % (page, element.text[:30], ratio))
    checks.equal(support.console_errors(driver), [], "%s: console errors" % page)


def main():
    checks = support.Checks("portal")
    folder = support.temporary()
    repo, head = support.marketplace(folder)
    daemon = support.Daemon(repo, os.path.join(folder, "state"))
    driver = None
    try:
        driver = support.browser()
        all_ids, all_text = catalog(repo)
        driver.get(daemon.gateway + "/-/")
        checks.equal(driver.find_element(By.TAG_NAME, "h1").text, "API catalog", "the catalog's heading")
        checks.equal(results(driver), all_ids, "the catalog lists what setu catalog lists")
        checks.equal(driver.find_element(By.ID, "result-count").text, "%d of %d APIs" % (len(all_ids), len(all_ids)), "the count")
        checks.expect(head[:12] in driver.find_element(By.TAG_NAME, "main").text, "the revision in force is named")
        accessibility(driver, checks, "catalog")
        checks.expect(support.screenshot_is_not_blank(driver, os.path.join(folder, "catalog.png")), "catalog: screenshot")

        # The keyboard reaches the search box, then the results.
        # From the top of the page, as a keyboard user starts; a click could land on a link.
        driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
        seen = []
        for _ in range(60):
            driver.switch_to.active_element.send_keys(Keys.TAB)
            active = driver.switch_to.active_element
            seen.append(active.get_attribute("id") or active.get_attribute("href") or active.tag_name)
            if active.get_attribute("href") and "/-/apis/" in active.get_attribute("href"):
                break
        checks.expect("q" in seen, "Tab reaches the search box: %r" % seen[:8])
        checks.expect(any("/-/apis/" in (item or "") for item in seen), "Tab reaches the results")
        checks.expect(seen.index("q") < len(seen) - 1 if "q" in seen else False, "the search box comes before the results")
        focus = driver.switch_to.active_element.value_of_css_property("outline-style")
        checks.expect(focus not in ("none", ""), "the focused result shows an outline (%s)" % focus)

        # Searching, from the keyboard.
        box = driver.find_element(By.ID, "q")
        box.send_keys("marksheet" + Keys.ENTER)
        time.sleep(0.3)
        ids, _ = catalog(repo, "--search", "marksheet")
        checks.equal(results(driver), ids, "search: the same answer as setu catalog --search marksheet")
        checks.expect(len(ids) >= 1, "search finds something")
        # A facet.
        driver.get(daemon.gateway + "/-/")
        driver.find_element(By.ID, "type-listing").click()
        driver.find_element(By.CSS_SELECTOR, "form[role=search] .layout button[type=submit]").click()
        time.sleep(0.3)
        ids, _ = catalog(repo, "--type", "listing")
        checks.equal(results(driver), ids, "the listing facet: the same answer as setu catalog --type listing")
        checks.expect(driver.find_element(By.ID, "type-listing").is_selected(), "the chosen facet stays chosen")
        driver.get(daemon.gateway + "/-/?consent=required&tag=certificate")
        checks.expect(all(item.startswith("cbse/") for item in results(driver)) and results(driver),
                      "consent and tag facets: %r" % results(driver))

        # catalog.json is setu catalog's JSON, byte for byte.
        portal_json = urllib.request.urlopen(daemon.gateway + "/-/catalog.json").read().decode()
        checks.equal(portal_json, all_text, "catalog.json")

        # An API page: operations from the OpenAPI document, plans, the Subscription, git and curl.
        driver.get(daemon.gateway + "/-/apis/cbse/class-xii-marksheet")
        checks.equal(driver.find_element(By.TAG_NAME, "h1").text, "Class XII Marksheet", "the API page's heading")
        entry = next(item for item in json.loads(all_text) if item["id"] == "cbse/class-xii-marksheet")
        checks.equal(len(driver.find_elements(By.CSS_SELECTOR, "section.operation")), entry["operations"], "one section per operation")
        checks.equal(len(driver.find_elements(By.CSS_SELECTOR, "#plans tbody tr")), len(entry["plans"]), "one row per plan")
        yaml = driver.find_element(By.ID, "subscription-yaml").text
        checks.expect("kind: Subscription" in yaml and "api: cbse/class-xii-marksheet" in yaml, "the Subscription to commit")
        checks.expect("git push -u origin subscribe-cbse-class-xii-marksheet" in driver.find_element(By.ID, "git-commands").text,
                      "the git commands")
        curl = driver.find_element(By.ID, "curl-example").text
        checks.expect("X-APISETU-APIKEY" in curl and "/cbse/v3/class-xii/" in curl, "the curl example")
        checks.expect("rollno" in driver.find_element(By.TAG_NAME, "main").text, "request schemas from the OpenAPI document")
        accessibility(driver, checks, "API page")
        checks.expect(support.screenshot_is_not_blank(driver, os.path.join(folder, "api.png")), "API page: screenshot")
        document = json.loads(urllib.request.urlopen(daemon.gateway + "/-/openapi/cbse/class-xii-marksheet.json").read())
        checks.expect("paths" in document, "the OpenAPI document is served")

        # A listing API says where its data is published; a publisher page lists its APIs.
        listing = next(item for item in json.loads(all_text) if item["type"] == "listing")
        driver.get(daemon.gateway + "/-/apis/" + listing["id"])
        main_text = driver.find_element(By.TAG_NAME, "main").text
        checks.expect("listed for information only" in main_text and driver.find_elements(By.CSS_SELECTOR, "main a[href^='http']"),
                      "the listing page links to where its data is published")
        checks.expect(not driver.find_elements(By.ID, "subscription-yaml"), "a listing offers no Subscription")
        driver.get(daemon.gateway + "/-/publishers/cbse")
        listed = [link.get_attribute("href").split("/-/apis/")[1] for link in driver.find_elements(By.CSS_SELECTOR, "#publisher-apis a")]
        checks.equal(listed, [item for item in all_ids if item.startswith("cbse/")], "the publisher's APIs")
        accessibility(driver, checks, "publisher page")

        # A phone's width.
        driver.set_window_size(390, 1600)
        driver.get(daemon.gateway + "/-/apis/cbse/class-xii-marksheet")
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        checks.expect(overflow <= 0, "the API page fits 390 px (%d px over)" % overflow)
    finally:
        if driver:
            driver.quit()
        daemon.stop()
    checks.finish()
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
