//! The residents' web page: plain HTML, CSS and JavaScript (no build step), compiled into
//! `actad` and served beside the API it reads (`rpc.web`, at `rpc.web_path`), with its
//! verifier and wallet: `node/web/wasm` compiled to WebAssembly by `build.rs`. The page
//! reads the API and posts one thing, a ballot signed in the browser; it stores nothing,
//! and the key never leaves the module's memory.
//!
//! Every file is served with a Content-Security-Policy that allows the page's own files and
//! requests to this node only (and compiling the page's own WebAssembly verifier).

use axum::{
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

use super::Api;

/// The page's files: name (below the page's path), media type, content.
pub const FILES: [(&str, &str, &[u8]); 5] = [
    (
        "",
        "text/html; charset=utf-8",
        include_bytes!("../../web/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/style.css"),
    ),
    (
        "lang/en.json",
        "application/json",
        include_bytes!("../../web/lang/en.json"),
    ),
    // The verifier: node/web/wasm for wasm32, built by build.rs (empty if the target is
    // not installed, which the page reports).
    (
        "verifier.wasm",
        "application/wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/acta_web.wasm")),
    ),
];

/// What the page may load and ask: its own files and this node's API.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn file(media: &'static str, body: &'static [u8]) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The page's routes under `path` (which starts and ends with `/`, as the config checks).
pub fn router(path: &str) -> Router<Api> {
    let mut router = Router::new();
    for (name, media, body) in FILES {
        router = router.route(
            &format!("{path}{name}"),
            get(move || async move { file(media, body) }),
        );
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(name: &str) -> &'static str {
        FILES
            .iter()
            .find(|(n, _, _)| *n == name)
            .and_then(|(_, _, b)| std::str::from_utf8(b).ok())
            .unwrap_or_else(|| panic!("no text file {name}"))
    }

    /// The quoted arguments of every call `call(` in `js` that start with `/` (template
    /// literals' `${…}` read as one path segment).
    fn api_paths(js: &str, call: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (at, _) in js.match_indices(call) {
            let rest = &js[at + call.len()..];
            let Some(quote) = rest.chars().next().filter(|c| matches!(c, '`' | '"')) else {
                continue;
            };
            let inner = &rest[1..];
            let end = inner.find(quote).unwrap_or(inner.len());
            let literal = &inner[..end];
            if !literal.starts_with('/') {
                continue;
            }
            let path = literal.split('?').next().unwrap_or_default();
            let mut normal = String::new();
            let mut depth = 0;
            for c in path.chars() {
                match c {
                    '$' if depth == 0 => {}
                    '{' => {
                        depth += 1;
                        if depth == 1 {
                            normal.push_str("{x}");
                        }
                    }
                    '}' => depth -= 1,
                    _ if depth == 0 => normal.push(c),
                    _ => {}
                }
            }
            out.push(normal);
        }
        out
    }

    #[test]
    fn every_api_path_the_page_reads_is_a_route_of_the_api() {
        let routes: Vec<String> = crate::rpc::routes()
            .into_iter()
            .map(|(_, p)| p.to_string())
            .collect();
        let js = body("app.js");
        let mut paths = api_paths(js, "api(");
        paths.extend(api_paths(js, "fetch("));
        assert!(paths.len() >= 10, "{paths:?}");
        for path in paths {
            let segments: Vec<&str> = path.split('/').collect();
            let known = routes.iter().any(|r| {
                let rs: Vec<&str> = r.split('/').collect();
                rs.len() == segments.len()
                    && rs.iter().zip(&segments).all(|(a, b)| {
                        a == b || (a.starts_with('{') && (b.starts_with('{') || !b.is_empty()))
                    })
            });
            assert!(
                known,
                "the page reads {path}, which is not a route of the API"
            );
        }
    }

    #[test]
    fn every_text_of_the_page_is_in_the_language_file() {
        let strings: serde_json::Value =
            serde_json::from_str(body("lang/en.json")).expect("the language file is JSON");
        let mut keys = Vec::new();
        for (file, marker) in [
            ("app.js", "t(\""),
            ("", "data-t=\""),
            ("", "data-t-aria=\""),
        ] {
            let text = body(file);
            for (at, _) in text.match_indices(marker) {
                // `t(` as a call of its own, not the end of `split(`.
                let before = text[..at].chars().next_back().unwrap_or(' ');
                if before.is_alphanumeric() || before == '_' || before == '.' || before == '-' {
                    continue;
                }
                let rest = &text[at + marker.len()..];
                keys.push(rest[..rest.find('"').unwrap_or(0)].to_string());
            }
        }
        // Keys made from a prefix and a value the API gives.
        for prefix in ["round.phase.", "cred.status."] {
            assert!(
                strings
                    .as_object()
                    .unwrap()
                    .keys()
                    .any(|k| k.starts_with(prefix)),
                "{prefix}"
            );
        }
        assert!(keys.len() > 40, "{}", keys.len());
        for key in keys {
            assert!(
                strings.get(&key).is_some(),
                "{key:?} is not in lang/en.json"
            );
        }
    }

    #[test]
    fn the_page_writes_no_html_from_data_and_sends_no_key() {
        let js = body("app.js");
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "localStorage",
        ] {
            assert!(!js.contains(banned), "app.js uses {banned}");
        }
        // The page reads, and sends one thing: a signed transaction, as hex, to POST /txs.
        assert_eq!(
            js.matches("method:").count(),
            1,
            "app.js sends more than ballots"
        );
        let post = &js[js.find("method: \"POST\"").expect("the ballot's POST")..];
        assert!(
            js.contains("fetch(\"/txs?mode=commit\"")
                && post[..post.len().min(200)].contains("body: JSON.stringify({ tx: hexTx })"),
            "app.js posts something other than a transaction"
        );
        // The key never reaches JavaScript: the module answers only its DID and public key.
        for kept_inside in ["seed", "secret_key", "private"] {
            assert!(!js.contains(kept_inside), "app.js handles {kept_inside}");
        }
    }
}
