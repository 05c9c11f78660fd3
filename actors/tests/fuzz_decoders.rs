#![allow(unsafe_code)] // the counting global allocator is an `unsafe impl GlobalAlloc`

//! Fuzzing every decoder of untrusted bytes (B6): the wire frames of each
//! message family (peer, server, admin), subnet discovery datagrams, the
//! manifest decoder and the topology spreadsheet parser.
//!
//! A plain mutation fuzzer, so it runs in CI without nightly or cargo-fuzz:
//! it starts from valid encodings, mutates them (bit flips, byte runs,
//! truncation, insertion, splicing, lying length fields, random bytes) and
//! feeds every input to every decoder. It asserts that:
//! - no decoder panics (each input runs under `catch_unwind`);
//! - no decoder makes an allocation larger than the frame cap it was given
//!   (a counting global allocator records the largest single allocation
//!   made on the decoding thread while it decodes).
//!
//! It tries `BRANCHLINE_FUZZ_INPUTS` inputs (default 1,000,000, about ten
//! seconds here) from a fixed seed (`BRANCHLINE_FUZZ_SEED`, default 1), so
//! every run tries the same inputs, and prints how long they took. By
//! hand, for longer (in release, about 180 million inputs in ten minutes):
//! `BRANCHLINE_FUZZ_INPUTS=180000000 cargo test --release -p branchline-actors --test fuzz_decoders -- --nocapture`

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use branchline_actors::client::discovery::{Datagram, MAX_DATAGRAM};
use branchline_actors::server::election::Attributes;
use branchline_actors::topology::spreadsheet;
use branchline_actors::wire::{
    AdminReply, AdminRequest, ByteCounters, MAX_REPLY_FRAME, MAX_REQUEST_FRAME, PeerReply,
    PeerRequest, Refusal, ServerReply, ServerRequest, decode_frame, encode_frame,
};
use branchline_storage::content::MAX_MANIFEST_BYTES;
use branchline_storage::publication::{Publication, Signature, SignedPublication};
use branchline_storage::{ContentId, ContentRecord, Manifest, NodeId, PieceMap};

/// Records the largest allocation made on a thread while it is armed.
struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the allocator may run while thread locals are torn down.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
        }
    });
}

// SAFETY: every call is passed straight to the system allocator; the
// wrapper only reads the requested size.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `decode` on `input`; returns the largest allocation it made, or
/// the panic message.
fn watched(decode: impl FnOnce()) -> Result<usize, String> {
    LARGEST.with(|l| l.set(0));
    ARMED.with(|a| a.set(true));
    let outcome = catch_unwind(AssertUnwindSafe(decode));
    ARMED.with(|a| a.set(false));
    match outcome {
        Ok(()) => Ok(LARGEST.with(Cell::get)),
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".into())),
    }
}

/// A decoder under test: its name, its cap on allocations, and the call.
struct Decoder {
    name: &'static str,
    cap: usize,
    run: fn(&[u8]),
}

fn decoders() -> Vec<Decoder> {
    fn frame<T: serde::de::DeserializeOwned>(bytes: &[u8], max: usize) {
        let _ = decode_frame::<T>(bytes, max);
    }
    vec![
        Decoder {
            name: "PeerRequest",
            cap: MAX_REQUEST_FRAME,
            run: |b| frame::<PeerRequest>(b, MAX_REQUEST_FRAME),
        },
        Decoder {
            name: "PeerReply",
            cap: MAX_REPLY_FRAME,
            run: |b| frame::<PeerReply>(b, MAX_REPLY_FRAME),
        },
        Decoder {
            name: "ServerRequest",
            cap: MAX_REPLY_FRAME,
            run: |b| frame::<ServerRequest>(b, MAX_REPLY_FRAME),
        },
        Decoder {
            name: "ServerReply",
            cap: MAX_REPLY_FRAME,
            run: |b| frame::<ServerReply>(b, MAX_REPLY_FRAME),
        },
        Decoder {
            name: "AdminRequest",
            cap: MAX_REPLY_FRAME,
            run: |b| frame::<AdminRequest>(b, MAX_REPLY_FRAME),
        },
        Decoder {
            name: "AdminReply",
            cap: MAX_REPLY_FRAME,
            run: |b| frame::<AdminReply>(b, MAX_REPLY_FRAME),
        },
        Decoder {
            name: "Datagram",
            cap: MAX_DATAGRAM,
            run: |b| {
                let _ = Datagram::decode(b);
            },
        },
        Decoder {
            name: "Manifest",
            cap: MAX_MANIFEST_BYTES,
            run: |b| {
                let _ = Manifest::from_bytes(b);
            },
        },
        // The spreadsheet parser copies its input and each field; bound it
        // by the input it was given plus a fixed allowance.
        Decoder {
            name: "topology CSV",
            cap: usize::MAX,
            run: |b| {
                let _ = spreadsheet::import(b);
            },
        },
    ]
}

/// Valid inputs the mutations start from.
fn seeds() -> Vec<Vec<u8>> {
    let content = ContentId::of(b"fuzz");
    let node = NodeId([7; 16]);
    let addr: SocketAddr = "198.18.1.10:34760".parse().unwrap();
    let manifest =
        Manifest::from_reader("tool.bin", &[3u8; 100_000][..], 16 * 1024, |_| {}).unwrap();
    let publication = SignedPublication {
        publication: Publication {
            content,
            confidential: true,
        },
        signature: Some(Signature {
            scheme: 0x0403,
            bytes: vec![9; 72],
            certificate: vec![0x30; 600],
        }),
    };
    let mut have = PieceMap::new(7);
    have.set(3);
    vec![
        encode_frame(&PeerRequest::GetPiece { content, index: 3 }),
        encode_frame(&PeerRequest::GetManifest { content }),
        encode_frame(&PeerReply::Piece { len: 1 << 20 }),
        encode_frame(&PeerReply::Refused(Refusal::Busy)),
        encode_frame(&PeerReply::Manifest(manifest.clone(), publication.clone())),
        encode_frame(&PeerReply::Refused(Refusal::Confidential)),
        encode_frame(&ServerReply::Content(
            ContentRecord {
                manifest: manifest.clone(),
                origins: vec!["http://198.18.0.1/p.bin".into()],
                published_ms: 1,
            },
            publication.clone(),
        )),
        encode_frame(&ServerRequest::GetRevocations { known: [5; 32] }),
        encode_frame(&ServerReply::Revocations(Some(vec![vec![0x30, 0x82, 1, 0]; 2]))),
        encode_frame(&ServerRequest::Heartbeat {
            id: node,
            attributes: Attributes::default(),
            counters: ByteCounters::default(),
        }),
        encode_frame(&ServerReply::Error("no".into())),
        encode_frame(&ServerReply::NotFound),
        encode_frame(&AdminRequest::Status),
        encode_frame(&AdminRequest::Fetch { content, out: Some("/tmp/x".into()) }),
        encode_frame(&AdminReply::Done("done".into())),
        Datagram::Request { nonce: 9, from: node, content, reply_to: addr }.encode().unwrap(),
        Datagram::Reply {
            nonce: 9,
            from: node,
            addr,
            content,
            have: have.clone(),
            signature: None,
        }
        .encode()
        .unwrap(),
        Datagram::Reply {
            nonce: 9,
            from: node,
            addr,
            content,
            have,
            signature: publication.signature.clone(),
        }
        .encode()
        .unwrap(),
        manifest.to_bytes(),
        b"office,parent,type,subnets,rvp_count,wan_rate_mbit\r\nhq,,Default,10.0.0.0/16,2,\r\nbranch,hq,WiFi,10.1.0.0/24;10.2.0.1-10.2.0.9,1,20\r\n".to_vec(),
    ]
}

/// xorshift64*: small, fast, and the same sequence for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).expect("below n")
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

/// One mutation of `input` (sometimes several), or fresh random bytes.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(9) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.byte();
            }
            2 => out.truncate(at),
            3 => {
                let run: Vec<u8> = (0..rng.below(64)).map(|_| rng.byte()).collect();
                out.splice(at..at, run);
            }
            4 if at < out.len() => {
                let end = (at + rng.below(64)).min(out.len());
                out.drain(at..end);
            }
            5 => {
                // Splice in part of another seed.
                let from = rng.below(other.len());
                let end = (from + rng.below(256)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            6 => {
                // A varint that claims a huge length, where lengths live.
                let huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
                out.splice(at..at, huge);
            }
            7 if out.len() >= 5 => {
                // Lie in the frame header's length field.
                let len = u32::try_from(rng.next() % (MAX_REPLY_FRAME as u64 * 2)).unwrap();
                out[1..5].copy_from_slice(&len.to_be_bytes());
            }
            _ => return (0..rng.below(512)).map(|_| rng.byte()).collect(),
        }
    }
    out
}

#[test]
fn no_decoder_panics_or_allocates_past_its_cap() {
    let wanted: u64 = std::env::var("BRANCHLINE_FUZZ_INPUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = std::env::var("BRANCHLINE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let decoders = decoders();
    let seeds = seeds();
    let mut rng = Rng(seed.max(1));
    let started = Instant::now();
    let (mut inputs, mut largest) = (0u64, vec![0usize; decoders.len()]);
    // Panics are caught and reported below; keep the default hook quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    while inputs < wanted && failures.len() < 10 {
        for _ in 0..256 {
            let base = &seeds[rng.below(seeds.len())];
            let other = &seeds[rng.below(seeds.len())];
            let input = mutate(&mut rng, base, other);
            inputs += 1;
            for (d, top) in decoders.iter().zip(largest.iter_mut()) {
                let cap = if d.cap == usize::MAX {
                    64 * 1024 + 8 * input.len()
                } else {
                    d.cap
                };
                match watched(|| (d.run)(&input)) {
                    Ok(biggest) => {
                        *top = (*top).max(biggest);
                        if biggest > cap {
                            failures.push(format!(
                                "{}: allocated {biggest} bytes (cap {cap}) for input {:02x?}",
                                d.name,
                                &input[..input.len().min(64)]
                            ));
                        }
                    }
                    Err(message) => failures.push(format!(
                        "{}: panicked ({message}) on input {:02x?}",
                        d.name,
                        &input[..input.len().min(64)]
                    )),
                }
            }
        }
    }
    let _ = std::panic::take_hook();
    println!(
        "fuzzed {inputs} inputs in {:.1} s (seed {seed}) through {} decoders",
        started.elapsed().as_secs_f64(),
        decoders.len()
    );
    for (d, top) in decoders.iter().zip(&largest) {
        println!(
            "  {:<14} largest allocation {top} bytes (cap {})",
            d.name,
            if d.cap == usize::MAX {
                "64 KiB + 8x input".into()
            } else {
                d.cap.to_string()
            }
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
