//! Codec throughput: Piece messages with 16 KiB blocks (bytes/s), small control messages
//! (messages/s), and the largest handshake. Run with `cargo bench -p shoal-wire --bench codec`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use shoal_metainfo::{BLOCK_SIZE, InfoHash, MAX_PIECES};
use shoal_wire::{
    Bitfield, Block, BlockRef, Handshake, HaveState, Message, PROTOCOL_VERSION, decode_frame,
    encode,
};

/// Pieces per iteration: 64 blocks of 16 KiB = 1 MiB.
const PIECES: u32 = 64;
/// Control messages per iteration.
const CONTROLS: u32 = 1000;

fn pieces() -> Vec<Message> {
    let data = Bytes::from(vec![0xa5; BLOCK_SIZE as usize]);
    (0..PIECES)
        .map(|i| {
            Message::Piece(Block {
                piece: i / 16,
                offset: (i % 16) * BLOCK_SIZE,
                data: data.clone(),
            })
        })
        .collect()
}

fn controls() -> Vec<Message> {
    (0..CONTROLS)
        .map(|i| {
            let block = BlockRef {
                piece: i * 7,
                offset: (i % 16) * BLOCK_SIZE,
                length: BLOCK_SIZE,
            };
            match i % 6 {
                0 => Message::Have(i),
                1 => Message::Request(block),
                2 => Message::Cancel(block),
                3 => Message::Reject(block),
                4 => Message::Interested,
                _ => Message::Unchoke,
            }
        })
        .collect()
}

fn encode_all(messages: &[Message], out: &mut BytesMut) {
    for message in messages {
        encode(message, out).unwrap();
    }
}

fn decode_all(buf: &mut BytesMut, expected: usize) {
    let mut n = 0;
    while let Some(message) = decode_frame(buf).unwrap() {
        black_box(message);
        n += 1;
    }
    assert_eq!(n, expected);
}

fn bench_set(c: &mut Criterion, name: &str, messages: &[Message], throughput: Throughput) {
    let mut stream = BytesMut::new();
    encode_all(messages, &mut stream);
    let mut group = c.benchmark_group(name);
    group.throughput(throughput);
    let mut out = BytesMut::new();
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            encode_all(black_box(messages), &mut out);
        })
    });
    group.bench_function("decode", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&stream[..]),
            |buf| decode_all(buf, messages.len()),
            BatchSize::SmallInput,
        )
    });
    // One buffer through both steps, as a stream task would use it: the decoded Pieces share its
    // memory until they are dropped.
    out.clear();
    group.bench_function("encode+decode", |b| {
        b.iter(|| {
            encode_all(black_box(messages), &mut out);
            decode_all(&mut out, messages.len());
        })
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    let data_bytes = u64::from(PIECES * BLOCK_SIZE);
    bench_set(c, "piece_16k", &pieces(), Throughput::Bytes(data_bytes));
    bench_set(
        c,
        "control",
        &controls(),
        Throughput::Elements(CONTROLS.into()),
    );
    let biggest = [Message::Handshake(Handshake {
        version: PROTOCOL_VERSION,
        info_hash: InfoHash([1; 20]),
        have: HaveState::Bitfield(Bitfield::full(MAX_PIECES as u32)),
    })];
    let bitfield_bytes = MAX_PIECES / 8;
    bench_set(
        c,
        "handshake_256k_bitfield",
        &biggest,
        Throughput::Bytes(bitfield_bytes),
    );
}

criterion_group!(benches, codec);
criterion_main!(benches);
