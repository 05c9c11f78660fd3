#!/usr/bin/python3
"""The console in a real headless browser (Debian's chromium, driven by
chromedriver through selenium), run by tests/console_browser.rs.

Chromium trusts the cluster CA the way an administrator's browser would:
the test imported ca.pem into the NSS database under $HOME. Steps: sign
in with a wrong password (the error is shown) and then the right one;
upload a topology sheet with a mistake (its problems by line are shown),
then one that adds the third office (its preview names the office and the
clients that would move) and apply it; open the Offices page for the content; say `watching` on stdout and wait
until every office shows all its clients done and its bytes by source
(the test starts the fetches when it reads `watching`), with the live
marker moving; the Clients page finds west's clients; the Contents page lists the
content; the Health page flags a device of the previous protocol version; the audit log page
shows the sign-in; signing out ends the session. A screenshot of each
page goes to --shots. Any failure exits non-zero with a line saying what.
"""

import argparse
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def browser():
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--window-size=1400,900", "--disable-dev-shm-usage"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait(driver, what, condition, seconds=30):
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.2).until(lambda d: condition(d))
    except Exception:
        sys.exit(f"timed out after {seconds} s waiting for {what}; page: {driver.current_url}")


def sign_in(driver, base, name, password):
    driver.get(base + "/offices")
    wait(driver, "the redirect to sign-in", lambda d: d.current_url.endswith("/sign-in"))
    form = driver.find_element(By.ID, "sign-in")
    form.find_element(By.NAME, "name").send_keys(name)
    form.find_element(By.NAME, "password").send_keys(password + "x")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, "the wrong password's error",
         lambda d: "wrong name or password" in d.find_element(By.ID, "problem").text)
    field = form.find_element(By.NAME, "password")
    field.clear()
    field.send_keys(password)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, "the Offices page", lambda d: d.current_url.endswith("/offices"))


def topology(driver, base, bad_sheet, sheet, shots):
    """Uploads a bad sheet (its problems by line are shown), then a good
    one: its preview names the office added and the clients that move,
    and Apply replaces the topology."""
    driver.get(base + "/topology")
    form = driver.find_element(By.ID, "topology-upload")
    driver.find_element(By.ID, "sheet").send_keys(bad_sheet)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, "the bad sheet's problems by line",
         lambda d: "line 3:" in d.find_element(By.ID, "problem").text)
    driver.find_element(By.ID, "sheet").clear()
    driver.find_element(By.ID, "sheet").send_keys(sheet)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, "the preview", lambda d: d.find_element(By.ID, "preview").is_displayed())
    lines = driver.find_element(By.ID, "preview-lines").text
    for needed in ["added: west", "client west-0 moves from", "to west"]:
        if needed not in lines:
            sys.exit(f"the preview lacks {needed!r}: {lines!r}")
    driver.save_screenshot(f"{shots}/topology.png")
    driver.find_element(By.ID, "apply").click()
    wait(driver, "the sheet applied",
         lambda d: d.find_element(By.ID, "applied").text == "applied: 3 offices")


def office_rows(driver):
    rows = {}
    for tr in driver.find_elements(By.CSS_SELECTOR, "tr[data-office]"):
        def field(name):
            found = tr.find_elements(By.CSS_SELECTOR, f'[data-field="{name}"]')
            return found[0].text if found else ""
        rows[tr.get_attribute("data-office")] = {
            "clients": field("clients"), "done": field("done"),
            "downloading": field("downloading"), "efficiency": field("efficiency"),
            "from_parent": field("from_parent"),
        }
    return rows


def efficiency(row):
    try:
        return float(row["efficiency"].rstrip(" %"))
    except ValueError:
        return -1.0


def all_done(driver, offices):
    rows = office_rows(driver)
    return all(rows.get(o, {}).get("done") == rows.get(o, {}).get("clients") != "0"
               for o in offices)


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--base", required=True)
    args.add_argument("--user", required=True)
    args.add_argument("--password", required=True)
    args.add_argument("--content", required=True)
    args.add_argument("--offices", required=True, help="comma-separated")
    args.add_argument("--shots", required=True)
    args.add_argument("--sheet", required=True, help="a topology sheet to upload")
    args.add_argument("--bad-sheet", required=True, help="one with a problem on line 3")
    args.add_argument("--least-efficiency", type=float, required=True)
    args.add_argument("--clients-per-office", type=int, required=True)
    a = args.parse_args()
    offices = a.offices.split(",")
    driver = browser()
    try:
        sign_in(driver, a.base, a.user, a.password)
        topology(driver, a.base, a.bad_sheet, a.sheet, a.shots)
        driver.get(f"{a.base}/offices?content={a.content}")
        wait(driver, "the live marker", lambda d: d.find_element(By.ID, "updated").text.startswith("live"))
        first = driver.find_element(By.ID, "updated").get_attribute("data-at")
        rows = office_rows(driver)
        missing = [o for o in offices if o not in rows]
        if missing:
            sys.exit(f"offices missing from the page: {missing}; shown: {list(rows)}")
        wait(driver, "every office's clients in it (those that moved included)",
             lambda d: all(office_rows(d).get(o, {}).get("clients") == str(a.clients_per_office)
                           for o in offices))
        print("watching", flush=True)
        started = time.monotonic()
        wait(driver, "every office done", lambda d: all_done(d, offices), seconds=120)
        # The bytes by source come with the clients' next heartbeats; with
        # WAN-once, each office's second client took the package from the
        # first, so half of what the office received stayed off its link.
        wait(driver, f"every office's efficiency at {a.least_efficiency} % or more",
             lambda d: all(efficiency(r) >= a.least_efficiency for r in office_rows(d).values()))
        print(f"rollout and bytes by source seen after {time.monotonic() - started:.1f} s: {office_rows(driver)}", flush=True)
        if driver.find_element(By.ID, "updated").get_attribute("data-at") == first:
            sys.exit("the live marker never moved")
        driver.save_screenshot(f"{a.shots}/offices.png")
        driver.get(a.base + "/clients?q=west")
        wait(driver, "the clients of west",
             lambda d: sorted(tr.get_attribute("data-client")
                              for tr in d.find_elements(By.CSS_SELECTOR, "tr[data-client]")) == ["west-0", "west-1"])
        driver.save_screenshot(f"{a.shots}/clients.png")
        driver.get(a.base + "/contents")
        wait(driver, "the contents table", lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-content]"))
        driver.save_screenshot(f"{a.shots}/contents.png")
        driver.get(a.base + "/health")
        wait(driver, "the old device flagged on the Health page",
             lambda d: d.find_element(By.CSS_SELECTOR, 'tr[data-check="protocol versions"]')
                        .get_attribute("data-level") == "fail"
             and "branchline/1" in d.find_element(By.CSS_SELECTOR, 'tr[data-check="protocol versions"]').text)
        driver.save_screenshot(f"{a.shots}/health.png")
        driver.get(a.base + "/audit")
        wait(driver, "the sign-in and the import in the audit log",
             lambda d: all(t in d.find_element(By.ID, "audit").text
                           for t in ["sign in", "topology import: 3 offices"]))
        driver.save_screenshot(f"{a.shots}/audit.png")
        driver.find_element(By.ID, "sign-out").click()
        wait(driver, "the sign-in page after signing out", lambda d: d.current_url.endswith("/sign-in"))
        driver.save_screenshot(f"{a.shots}/sign-in.png")
        driver.get(a.base + "/offices")
        wait(driver, "signed out for good", lambda d: d.current_url.endswith("/sign-in"))
    finally:
        driver.quit()
    print("ok", flush=True)


if __name__ == "__main__":
    main()
