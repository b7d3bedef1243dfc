//! Calls an upstream from `allowed_outbound_hosts` with the SDK's outbound
//! client and reports what it answered.
//!
//! Any request `GET`s the `UPSTREAM_URL` config (the manifest's `env`) and
//! answers `200 {"status":<upstream status>,"body":"<upstream body, lossy UTF-8>"}`.
//!
//! | failure | answer |
//! |---|---|
//! | `UPSTREAM_URL` not set | `500 {"error":"missing config `UPSTREAM_URL`: ..."}` |
//! | upstream not in `allowed_outbound_hosts` | `502 {"error":"outbound request to `<url>` denied: ..."}` |
//! | upstream timed out (`UPSTREAM_TIMEOUT_MS`, default 5000 per phase) | `504 {"error":"..."}` |
//! | any other upstream failure | `502 {"error":"..."}` |
//!
//! ```toml
//! [[service]]
//! name = "outbound"
//! component = "../guests/target/wasm32-wasip2/release/outbound.wasm"
//! route = "/outbound"
//! env = { UPSTREAM_URL = "http://127.0.0.1:9000/hello" }
//! allowed_outbound_hosts = ["http://127.0.0.1:9000"]
//! ```

use std::time::Duration;

use serde_json::json;
use wasmhost_sdk::{Error, Request, Response, config, outbound};

fn call_upstream(_req: Request) -> Result<Response, Error> {
    let url = config::get("UPSTREAM_URL")?;
    let timeout = Duration::from_millis(config::parse_or("UPSTREAM_TIMEOUT_MS", 5000)?);
    let upstream = outbound::send(outbound::Request::get(url).with_timeout(timeout))?;
    Ok(Response::json(&json!({
        "status": upstream.status().as_u16(),
        "body": String::from_utf8_lossy(upstream.body()),
    })))
}

wasmhost_sdk::export!(call_upstream);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use wasmhost_sdk::outbound::OutboundError;
    use wasmhost_sdk::testing::TestEnv;

    const URL: &str = "http://127.0.0.1:9000/hello";

    fn env() -> TestEnv {
        TestEnv::new().config("UPSTREAM_URL", URL)
    }

    #[test]
    fn reports_the_upstream_answer() {
        let env = env().outbound(|req| {
            assert_eq!(req.url(), URL);
            assert_eq!(req.method(), "GET");
            assert_eq!(req.timeout(), Duration::from_secs(5));
            Ok(Response::text("hi").with_status(201))
        });
        let resp = env.call(call_upstream, Request::get("/outbound"));
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.json::<Value>(), json!({"status": 201, "body": "hi"}));
    }

    #[test]
    fn timeout_comes_from_config() {
        let env = env().config("UPSTREAM_TIMEOUT_MS", "250").outbound(|req| {
            assert_eq!(req.timeout(), Duration::from_millis(250));
            Err(OutboundError::Timeout {
                url: req.url().to_owned(),
            })
        });
        let resp = env.call(call_upstream, Request::get("/outbound"));
        assert_eq!(resp.status(), 504);
    }

    #[test]
    fn denied_upstream_is_502_with_error_json() {
        let env = env().outbound(|req| {
            Err(OutboundError::Denied {
                url: req.url().to_owned(),
            })
        });
        let resp = env.call(call_upstream, Request::get("/outbound"));
        assert_eq!(resp.status(), 502);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        let error = resp.json::<Value>()["error"].as_str().unwrap().to_owned();
        assert!(error.contains("denied"), "{error}");
        assert!(error.contains(URL), "{error}");
        assert_eq!(
            resp.logs().len(),
            1,
            "a 5xx error is logged: {:?}",
            resp.logs()
        );
    }

    #[test]
    fn missing_config_names_the_key() {
        let resp = TestEnv::new().call(call_upstream, Request::get("/outbound"));
        assert_eq!(resp.status(), 500);
        assert!(resp.text().contains("`UPSTREAM_URL`"), "{}", resp.text());
    }

    #[test]
    fn without_a_mock_natively_it_says_it_needs_the_runtime() {
        let resp = env().call(call_upstream, Request::get("/outbound"));
        assert_eq!(resp.status(), 500);
        assert!(resp.text().contains("wasm runtime"), "{}", resp.text());
    }
}
