"""The operator dashboard in a real headless Chromium: the sign-in form, each time range with
charts of the right number of points for a known hit log, the tables, keyboard navigation,
a phone-width screen, no console error, and screenshots that are not blank."""
import os
import shutil
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

import support

TOKEN = "browser-test-admin-token-0123456789"


def series(driver, chart, name):
    line = driver.find_element(By.CSS_SELECTOR, "#%s polyline[data-series='%s']" % (chart, name))
    return [float(value) for value in line.get_attribute("data-values").split()], len(line.get_attribute("points").split())


def table(driver, section):
    rows = driver.find_elements(By.CSS_SELECTOR, "#%s tbody tr" % section)
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def main():
    checks = support.Checks("dashboard")
    folder = support.temporary()
    repo, head = support.marketplace(folder)
    state = os.path.join(folder, "state")
    support.write_known_hits(os.path.join(state, "hits"), 167)
    token_file = os.path.join(folder, "admin-token")
    with open(token_file, "w") as out:
        out.write(TOKEN + "\n")
    daemon = support.Daemon(repo, state, ["--admin-token-file", token_file])
    driver = None
    try:
        # Live traffic in this hour: five calls with a wrong key.
        for _ in range(5):
            checks.equal(daemon.call("/pan/v3/pancr/certificate", {"X-APISETU-CLIENTID": "acme-bank-prod",
                                                                     "X-APISETU-APIKEY": "wrong"}), 401, "a wrong key")
        time.sleep(1.5)
        driver = support.browser()

        # Signing in: the page sends the browser to the form, which sends it back.
        driver.get(daemon.admin + "/dashboard?range=week")
        checks.expect("/login" in driver.current_url, "an anonymous browser is sent to /login, not " + driver.current_url)
        field = driver.find_element(By.ID, "token")
        checks.equal(driver.find_element(By.CSS_SELECTOR, "label[for=token]").text, "Admin token", "the field's label")
        field.send_keys(TOKEN + Keys.ENTER)
        time.sleep(0.5)
        checks.expect(driver.current_url.endswith("/dashboard?range=week"), "signed in, back on the page: " + driver.current_url)

        # The week: an hour per point, 167 hours of the known log and this one.
        checks.equal(driver.find_element(By.TAG_NAME, "h1").text, "Dashboard", "the heading")
        checks.equal(driver.find_element(By.ID, "revision").text, head, "the revision serving")
        values, points = series(driver, "traffic-chart", "2xx")
        checks.equal((points, len(values)), (168, 168), "week: points of the 2xx line")
        checks.equal(values, [1.0] * 167 + [0.0], "week: 2xx per hour")
        values, _ = series(driver, "traffic-chart", "4xx")
        checks.equal(values, [1.0] * 167 + [5.0], "week: 4xx per hour")
        values, points = series(driver, "latency-chart", "p50")
        checks.equal(points, 168, "week: points of the p50 line")
        checks.expect(all(abs(value - 20) <= 0.2 for value in values[:167]) and values[167] == 0,
                      "week: p50 is 20 ms in each hour of the known log, within 1%%: %r" % values[:3])
        checks.equal(table(driver, "top-consumers"), [["acme-bank", "167", "0", "0"], ["swift-loans", "167", "167", "0"],
                                                      ["-", "5", "5", "0"]], "week: top consumers")
        checks.equal(table(driver, "top-apis")[0], ["cbse/class-xii-marksheet", "167", "0", "0"], "week: the top API")
        description = driver.find_element(By.ID, "denials-chart-desc").get_attribute("textContent")
        checks.equal(description, "rate-limited: 167, invalid-credentials: 5", "week: denials by reason")
        checks.equal(len(driver.find_elements(By.CSS_SELECTOR, "#denials-chart rect.bar")), 2, "week: denial bars")
        pending = table(driver, "pending")
        checks.expect(len(pending) == 1 and support.PENDING in pending[0][0] and "cto@swiftloans.example" in pending[0][1]
                      and "jointsecretary@parivahan.example" in pending[0][2], "the pending approval and who can approve: %r" % pending)
        checks.expect(any("many-denials" in row[0] for row in table(driver, "alerts")), "the denial alert fires")
        checks.equal(support.console_errors(driver), [], "week: console errors")
        checks.expect(support.screenshot_is_not_blank(driver, os.path.join(folder, "dashboard-week.png")), "week: screenshot")

        # The keyboard reaches the ranges, and Enter follows one.
        # From the top of the page, as a keyboard user starts; a click could land on a link.
        driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
        reached = False
        for _ in range(20):
            driver.switch_to.active_element.send_keys(Keys.TAB)
            if driver.switch_to.active_element.text == "Last day":
                reached = True
                break
        checks.expect(reached, "Tab reaches the 'Last day' link")
        driver.switch_to.active_element.send_keys(Keys.ENTER)
        time.sleep(0.5)
        checks.expect(driver.current_url.endswith("range=day"), "Enter follows it: " + driver.current_url)
        values, points = series(driver, "traffic-chart", "2xx")
        checks.equal((points, values), (24, [1.0] * 23 + [0.0]), "day: 2xx per hour")
        checks.equal(support.console_errors(driver), [], "day: console errors")

        # The hour, minute by minute, from the live hits.
        driver.get(daemon.admin + "/dashboard?range=hour")
        values, points = series(driver, "traffic-chart", "4xx")
        checks.equal((points, sum(values)), (60, 5.0), "hour: 60 minutes, five 4xx")
        checks.equal(series(driver, "traffic-chart", "2xx")[0], [0.0] * 60, "hour: no 2xx")
        checks.expect(driver.find_element(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]').get_attribute("content") == "30",
                      "the page refreshes itself")
        checks.equal(support.console_errors(driver), [], "hour: console errors")
        checks.expect(support.screenshot_is_not_blank(driver, os.path.join(folder, "dashboard-hour.png")), "hour: screenshot")

        # A phone's width: nothing runs off the side.
        driver.set_window_size(390, 1600)
        driver.get(daemon.admin + "/dashboard?range=week")
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        checks.expect(overflow <= 0, "at 390 px the page does not scroll sideways (%d px over)" % overflow)
        checks.expect(support.screenshot_is_not_blank(driver, os.path.join(folder, "dashboard-phone.png")), "phone: screenshot")
    finally:
        if driver:
            driver.quit()
        daemon.stop()
    checks.finish()
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
