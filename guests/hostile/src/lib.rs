//! Hostile behaviours, one per path (the last path segment picks it). The
//! limit, isolation and hostile-guest tests and the soak use it; every mode
//! that finishes answers `200` with `text/plain`.
//!
//! | path | does |
//! |---|---|
//! | `/ok` | `200 ok` |
//! | `/trap` | executes `unreachable` |
//! | `/panic` | panics (the message goes to stderr, then the instance aborts) |
//! | `/spin` | `loop {}`: burns fuel, or only time when fuel is unlimited |
//! | `/alloc?mib=N` | allocates and touches N MiB, then `200 allocated N MiB` |
//! | `/memory-grow` | `memory.grow` by 1 MiB until refused, then traps |
//! | `/sleep?ms=N` | blocks on a monotonic-clock pollable for N ms, then `200 slept N ms` |
//! | `/stack-overflow` | recurses until the stack runs out |
//! | `/handles` | creates wasi:http `fields` resources and never drops them |
//! | `/fields-flood?n=N` | appends N (default 200) header fields, then responds with them |
//! | `/huge-header?kib=N` | responds with one N KiB header value (panics if the host refuses to hold it) |
//! | `/random?mib=N` | asks wasi:random for N MiB at once |
//! | `/hostcall?mib=N` | passes one N MiB list to the host (a stdout write) |
//! | `/read-body` | reads the request body to its end, then `200 read N bytes` |
//! | `/outbound-unread?url=U` | POSTs an endless body to U (which must be allowed) |
//! | `/stream-forever` | sends a `200` head, then 4 KiB chunks until the write fails |
//! | `/trap-after-head` | sends a `200` head and a flushed chunk, then traps |
//! | `/big?mib=N` | streams N MiB of `x` in 64 KiB chunks |
//! | `/log?lines=N` | prints `stdout line i` to stdout and `stderr line i` to stderr for i in 0..N |
//! | `/slow-body?ms=N&chunks=K` | sends the head, then K (default 5) chunks `chunk i\n`, sleeping N ms before each |
//! | `/secret-write?seed=S` | writes a 64 KiB pattern derived from S into its heap and into 1 MiB of newly grown memory, then `200 secret written, visible N` (N copies it can see itself) |
//! | `/secret-scan?seed=S&pages=P` | grows its memory by P pages (default 64), then counts copies of that pattern anywhere in it: `200 found N` |
//!
//! Defaults: `mib=1`, `ms=100`, `lines=1`, `kib=64`, `seed=1`. Anything else
//! is `404` with the list of modes. It uses the raw `wasi` bindings because
//! most modes need a streamed body or a resource the SDK hides.

use std::hint::black_box;
use std::io::Write as _;

use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse, OutputStream,
    ResponseOutparam, Scheme,
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
            "/memory-grow" => grow_until_refused(),
            "/handles" => {
                let mut leaked = 0u64;
                loop {
                    std::mem::forget(Fields::new());
                    leaked = black_box(leaked + 1);
                }
            }
            "/fields-flood" => {
                let fields = Fields::new();
                for i in 0..param("n", 200) {
                    if fields.append(&format!("x-flood-{i}"), b"flood").is_err() {
                        break;
                    }
                }
                let response = OutgoingResponse::new(fields);
                let body = response.body().expect("a new response has a body");
                ResponseOutparam::set(out, Ok(response));
                let _ = OutgoingBody::finish(body, None);
            }
            "/huge-header" => {
                let kib = param("kib", 64) as usize;
                let value = vec![b'h'; kib * 1024];
                let headers = Fields::from_list(&[("x-huge".to_owned(), value)])
                    .expect("the host refused to hold the header");
                let response = OutgoingResponse::new(headers);
                let body = response.body().expect("a new response has a body");
                ResponseOutparam::set(out, Ok(response));
                let _ = OutgoingBody::finish(body, None);
            }
            "/random" => {
                let mib = param("mib", 1);
                let bytes = wasi::random::random::get_random_bytes(mib * MIB as u64);
                respond(out, 200, &format!("got {} random bytes", bytes.len()));
            }
            "/hostcall" => {
                let mib = param("mib", 1) as usize;
                let stdout = wasi::cli::stdout::get_stdout();
                let result = stdout.write(&vec![b'.'; mib * MIB]);
                respond(out, 200, &format!("wrote {mib} MiB at once: {result:?}"));
            }
            "/read-body" => {
                let read = read_body(request);
                respond(out, 200, &format!("read {read} bytes"));
            }
            "/outbound-unread" => {
                let url = query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("url="))
                    .unwrap_or("");
                let error = post_forever(url);
                respond(out, 502, &format!("outbound: {error}"));
            }
            "/secret-write" => {
                let seed = param("seed", 1);
                // One copy on the heap, leaked so it stays until the
                // instance is gone, and one in freshly grown pages.
                let mut block = vec![0u8; SECRET_BYTES];
                fill_secret(&mut block, seed);
                std::mem::forget(black_box(block));
                let grown = core::arch::wasm32::memory_grow(0, 16);
                if grown != usize::MAX {
                    // SAFETY: the 16 pages (1 MiB) from `grown` were just
                    // added to linear memory and nothing else uses them.
                    let fresh = unsafe {
                        core::slice::from_raw_parts_mut((grown * 65536) as *mut u8, SECRET_BYTES)
                    };
                    fill_secret(fresh, seed);
                }
                // The probe's positive control: this instance sees its copies.
                let visible = scan_for_secret(seed);
                respond(out, 200, &format!("secret written, visible {visible}"));
            }
            "/secret-scan" => {
                // Grow first, so that pages a previous instance grew are
                // scanned too.
                core::arch::wasm32::memory_grow(0, param("pages", 64) as usize);
                let found = scan_for_secret(param("seed", 1));
                respond(out, 200, &format!("found {found}"));
            }
            other => respond(
                out,
                404,
                &format!(
                    "hostile: unknown mode `{other}`; try /ok /trap /panic /spin /alloc?mib=N \
                     /memory-grow /sleep?ms=N /stack-overflow /handles /fields-flood \
                     /huge-header?kib=N /random?mib=N /hostcall?mib=N /read-body \
                     /outbound-unread?url=U /stream-forever /trap-after-head /big?mib=N \
                     /log?lines=N /slow-body?ms=N&chunks=K /secret-write?seed=S /secret-scan?seed=S"
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

/// `memory.grow` by 16 pages (1 MiB) at a time until the host refuses, then
/// trap: what a guest whose allocator ignores failure does.
fn grow_until_refused() -> ! {
    loop {
        if core::arch::wasm32::memory_grow(0, 16) == usize::MAX {
            core::arch::wasm32::unreachable();
        }
    }
}

/// Reads the request body to its end; the byte count.
fn read_body(request: IncomingRequest) -> u64 {
    let Ok(body) = request.consume() else {
        return 0;
    };
    let Ok(stream) = body.stream() else {
        return 0;
    };
    let mut read = 0u64;
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        read += chunk.len() as u64;
    }
    read
}

/// POSTs an endless body to `url` (`http://host:port/path`), writing until a
/// write fails; why it stopped.
fn post_forever(url: &str) -> String {
    let Some(rest) = url.strip_prefix("http://") else {
        return format!("want an http:// url, got `{url}`");
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_method(&Method::Post);
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(if path.is_empty() { "/" } else { path }));
    let Ok(body) = request.body() else {
        return "no body".to_owned();
    };
    let pending = match wasi::http::outgoing_handler::handle(request, None) {
        Ok(pending) => pending,
        Err(code) => return format!("{code:?}"),
    };
    let Ok(mut stream) = body.write() else {
        return "no body stream".to_owned();
    };
    let chunk = [b'u'; 4096];
    loop {
        if let Err(e) = stream.write_all(&chunk) {
            drop(pending);
            return format!("write failed: {e}");
        }
    }
}

/// Bytes of the secret pattern: larger than anything else the guest holds,
/// so a match is never an accident.
const SECRET_BYTES: usize = 64 * 1024;

/// A pattern only `seed` produces (xorshift), written straight into `block`
/// so no other copy of it exists in memory.
fn fill_secret(block: &mut [u8], seed: u64) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in block.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
}

/// How many places in the whole linear memory hold the first 4 KiB of `seed`'s pattern, apart from the copy
/// this function makes to compare against.
fn scan_for_secret(seed: u64) -> usize {
    const PROBE: usize = 4096;
    let mut pattern = vec![0u8; PROBE];
    fill_secret(&mut pattern, seed);
    let own = pattern.as_ptr() as usize;
    let size = core::arch::wasm32::memory_size(0) * 65536;
    let mut found = 0;
    // The pattern starts 8-byte aligned wherever an allocator put it.
    let mut address = 8;
    while address + PROBE <= size {
        if address != own {
            // SAFETY: every address below `memory_size` is in bounds of
            // linear memory; reading bytes another allocation owns is the
            // point of the probe (nothing is written).
            let window = unsafe { core::slice::from_raw_parts(address as *const u8, PROBE) };
            if window[..8] == pattern[..8] && window == &pattern[..] {
                found += 1;
            }
        }
        address += 8;
    }
    black_box(&pattern);
    found
}
