//! The dashboard in real headless Chromium: tests/browser/dashboard.test.mjs drives
//! it with playwright-core against this build's server (it starts, restarts and
//! stops the server itself). `bash tests/run` installs the browser and the driver.

use std::path::Path;
use std::process::Command;

#[test]
fn the_dashboard_works_in_a_real_browser() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core/package.json").is_file(),
        "playwright-core is missing: run `bash tests/run` (or `npm ci --prefix tests/browser`)"
    );
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "dashboard.test.mjs"])
        .current_dir(&dir)
        .env("SWITCHBOARD_BIN", env!("CARGO_BIN_EXE_switchboard"))
        .env("SCREENSHOT_DIR", shots)
        // A real container engine, for the container-runner scenario.
        .env("SWITCHBOARD_TEST_ENGINE", &crate::engine::local().endpoint)
        .env("SWITCHBOARD_TEST_IMAGE", crate::engine::IMAGE)
        .output()
        .expect("node runs (install Node.js 20 or later)");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{report}");
    assert!(out.status.success(), "the browser tests failed:\n{report}");
}

/// The dashboard with a fleet (tests/browser/fleet.bench.mjs), briefly: 500 instances
/// render, and status events reach the screen; the figures are printed, not asserted
/// (the long run is `node tests/browser/fleet.bench.mjs --minutes 60`).
#[test]
fn the_dashboard_keeps_up_with_a_fleet() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let out = Command::new("node")
        .args(["fleet.bench.mjs", "--minutes", "0.25", "--instances", "500"])
        .current_dir(&dir)
        .env("SWITCHBOARD_BIN", env!("CARGO_BIN_EXE_switchboard"))
        .output()
        .expect("node runs (install Node.js 20 or later)");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{report}");
    assert!(out.status.success(), "the fleet run failed:\n{report}");
    assert!(report.contains("event → status on screen"), "{report}");
}
