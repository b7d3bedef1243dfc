//! One guest, many faults, chosen by the last segment of the path. The limit and isolation tests use
//! it; every mode except the failures answers `200` with `text/plain`.
//!
//! | path | does |
//! |---|---|
//! | `/ok` | `200 ok` |
//! | `/trap` | executes `unreachable` |
//! | `/panic` | panics (the message goes to stderr, then the instance aborts) |
//! | `/spin` | loops forever, burning fuel |
//! | `/alloc?mib=N` | allocates and touches N MiB, then `200 allocated N MiB` |
//! | `/sleep?ms=N` | blocks on a monotonic-clock pollable for N ms, then `200 slept N ms` |
//! | `/stack-overflow` | recurses until the stack runs out |
//! | `/stream-forever` | sends a `200` head, then 4 KiB chunks until the write fails |
//! | `/trap-after-head` | sends a `200` head and a flushed chunk, then traps |
//! | `/big?mib=N` | streams N MiB of `x` in 64 KiB chunks |
//! | `/log?lines=N` | prints `stdout line i` to stdout and `stderr line i` to stderr for i in 0..N |
//! | `/slow-body?ms=N&chunks=K` | sends the head, then K (default 5) chunks `chunk i\n`, sleeping N ms before each |
//!
//! Defaults: `mib=1`, `ms=100`, `lines=1`. Anything else is `404` with the list
//! of modes. It uses the raw `wasi`
//! bindings because most modes need a streamed body, which the SDK's
//! whole-body `Response` cannot express.

use std::hint::black_box;
use std::io::Write as _;

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, OutputStream, ResponseOutparam,
};

const MIB: usize = 1024 * 1024;

struct Misbehave;

impl wasi::exports::http::incoming_handler::Guest for Misbehave {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_else(|| "/".to_owned());
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        // A number from the query, or `default` when absent or not a number.
        let param = |name: &str, default: u64| -> u64 {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == name)
                .and_then(|(_, value)| value.parse().ok())
                .unwrap_or(default)
        };
        // The mode is the last path segment, so the guest works under any
        // route prefix (`/bad/trap` is `/trap`).
        let path = &path[path.rfind('/').unwrap_or(0)..];
        match path {
            "/ok" => respond(out, 200, "ok"),
            "/trap" => core::arch::wasm32::unreachable(),
            "/panic" => panic!("misbehave: panic requested"),
            "/spin" => spin(),
            "/alloc" => {
                let mib = param("mib", 1);
                touch((mib as usize).saturating_mul(MIB));
                respond(out, 200, &format!("allocated {mib} MiB"));
            }
            "/sleep" => {
                let ms = param("ms", 100);
                sleep_ms(ms);
                respond(out, 200, &format!("slept {ms} ms"));
            }
            "/stack-overflow" => {
                let depth = recurse(0);
                respond(out, 200, &format!("recursed {depth}"));
            }
            "/stream-forever" => {
                let (body, mut stream) = start(out, 200);
                let chunk = [b'x'; 4096];
                while stream.write_all(&chunk).is_ok() && stream.blocking_flush().is_ok() {}
                drop(stream);
                drop(body);
            }
            "/trap-after-head" => {
                let (_body, mut stream) = start(out, 200);
                let _ = stream.write_all(b"partial body before a trap\n");
                let _ = stream.blocking_flush();
                core::arch::wasm32::unreachable();
            }
            "/big" => {
                let mib = param("mib", 1);
                let (body, mut stream) = start(out, 200);
                let chunk = vec![b'x'; 64 * 1024];
                for _ in 0..mib * 16 {
                    if stream.write_all(&chunk).is_err() {
                        return;
                    }
                }
                finish(body, stream);
            }
            "/log" => {
                let lines = param("lines", 1);
                for i in 0..lines {
                    println!("stdout line {i}");
                    eprintln!("stderr line {i}");
                }
                respond(out, 200, &format!("logged {lines} lines"));
            }
            "/slow-body" => {
                let (ms, chunks) = (param("ms", 100), param("chunks", 5));
                let (body, mut stream) = start(out, 200);
                for i in 0..chunks {
                    sleep_ms(ms);
                    let line = format!("chunk {i}\n");
                    if stream.write_all(line.as_bytes()).is_err()
                        || stream.blocking_flush().is_err()
                    {
                        return;
                    }
                }
                finish(body, stream);
            }
            other => respond(
                out,
                404,
                &format!(
                    "misbehave: unknown mode `{other}`; try /ok /trap /panic /spin /alloc?mib=N \
                     /sleep?ms=N /stack-overflow /stream-forever /trap-after-head /big?mib=N \
                     /log?lines=N /slow-body?ms=N&chunks=K"
                ),
            ),
        }
    }
}

wasi::http::proxy::export!(Misbehave);

/// Send the head now; the caller streams the body.
fn start(out: ResponseOutparam, status: u16) -> (OutgoingBody, OutputStream) {
    let headers = Fields::from_list(&[("content-type".to_owned(), b"text/plain".to_vec())])
        .expect("content-type is an allowed header");
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).expect("valid status");
    let body = response.body().expect("a new response has a body");
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().expect("a new body has a stream");
    (body, stream)
}

fn finish(body: OutgoingBody, stream: OutputStream) {
    let _ = stream.blocking_flush();
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
}

fn respond(out: ResponseOutparam, status: u16, text: &str) {
    let (body, mut stream) = start(out, status);
    if stream.write_all(text.as_bytes()).is_ok() {
        finish(body, stream);
    }
}

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

/// Allocate `bytes` and write to every page, so the memory is really grown
/// and used. An allocation the memory limit refuses aborts (a trap).
fn touch(bytes: usize) {
    let mut block = vec![0u8; bytes];
    for page in block.chunks_mut(4096) {
        page[0] = 1;
    }
    black_box(&block);
}

fn sleep_ms(ms: u64) {
    wasi::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
}

/// Recurse with a frame the optimizer must keep, and work after the call so
/// it cannot become a loop.
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    let below = recurse(black_box(depth + 1));
    below.wrapping_add(frame[(depth % 32) as usize])
}
