//! TensorBoard event files read back by an independent reader: every record's framing and both
//! CRCs checked (with a bitwise CRC-32C written here, not the crate the writer uses), and every
//! event decoded as protobuf and compared field by field.

use spatial_gpu::tensorboard::{self, EventWriter};
use spatial_gpu::train::EpochMetrics;
use std::path::{Path, PathBuf};

/// CRC-32C bit by bit (reflected polynomial 0x82F63B78), the definition itself.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn masked(data: &[u8]) -> u32 {
    let c = crc32c(data);
    // The spec's ((c >> 15) | (c << 17)) + 0xa282ead8.
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// The records of an event file; panics (the test fails) on a bad length or CRC.
fn records(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    while at < bytes.len() {
        assert!(at + 12 <= bytes.len(), "record header cut short at byte {at}");
        let len_bytes = &bytes[at..at + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        assert_eq!(
            u32_at(at + 8),
            masked(len_bytes),
            "length CRC of the record at byte {at}"
        );
        let data_at = at + 12;
        assert!(data_at + len + 4 <= bytes.len(), "record at byte {at} cut short");
        let data = &bytes[data_at..data_at + len];
        assert_eq!(
            u32_at(data_at + len),
            masked(data),
            "data CRC of the record at byte {at}"
        );
        out.push(data.to_vec());
        at = data_at + len + 4;
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Varint(u64),
    Fixed64([u8; 8]),
    Fixed32([u8; 4]),
    Bytes(Vec<u8>),
}

fn varint(b: &[u8], at: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let byte = b[*at];
        *at += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// A protobuf message as `(field number, value)` in wire order.
fn decode(b: &[u8]) -> Vec<(u64, Field)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < b.len() {
        let key = varint(b, &mut at);
        let f = match key & 7 {
            0 => Field::Varint(varint(b, &mut at)),
            1 => {
                at += 8;
                Field::Fixed64(b[at - 8..at].try_into().unwrap())
            }
            5 => {
                at += 4;
                Field::Fixed32(b[at - 4..at].try_into().unwrap())
            }
            2 => {
                let n = varint(b, &mut at) as usize;
                at += n;
                Field::Bytes(b[at - n..at].to_vec())
            }
            t => panic!("unexpected wire type {t}"),
        };
        out.push((key >> 3, f));
    }
    out
}

fn one(msg: &[(u64, Field)], field: u64) -> Field {
    let hits: Vec<&Field> = msg.iter().filter(|f| f.0 == field).map(|f| &f.1).collect();
    assert_eq!(hits.len(), 1, "field {field} in {msg:?}");
    hits[0].clone()
}
fn bytes(f: Field) -> Vec<u8> {
    match f {
        Field::Bytes(b) => b,
        f => panic!("not bytes: {f:?}"),
    }
}

/// A decoded event: wall time, step, and the rest.
struct Event {
    wall_time: f64,
    step: i64,
    fields: Vec<(u64, Field)>,
}

fn event(data: &[u8]) -> Event {
    let fields = decode(data);
    let wall_time = match one(&fields, 1) {
        Field::Fixed64(b) => f64::from_le_bytes(b),
        f => panic!("wall_time {f:?}"),
    };
    let step = match fields.iter().find(|f| f.0 == 2) {
        Some((_, Field::Varint(v))) => *v as i64,
        None => 0,
        f => panic!("step {f:?}"),
    };
    Event {
        wall_time,
        step,
        fields,
    }
}

/// `(tag, value)` of a scalar event.
fn scalar(e: &Event) -> (String, f32) {
    let summary = decode(&bytes(one(&e.fields, 5)));
    let value = decode(&bytes(one(&summary, 1)));
    let tag = String::from_utf8(bytes(one(&value, 1))).unwrap();
    match one(&value, 2) {
        Field::Fixed32(b) => (tag, f32::from_le_bytes(b)),
        f => panic!("simple_value {f:?}"),
    }
}

fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_reference_crc_is_crc32c() {
    // The check value of CRC-32C (iSCSI) from the CRC catalogue.
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(tensorboard::masked_crc32c(b"123456789"), masked(b"123456789"));
    assert_eq!(tensorboard::masked_crc32c(b""), masked(b""));
}

#[test]
fn scalars_and_text_read_back_with_every_crc_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tb");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut w = EventWriter::create(&dir).unwrap();
    w.add_scalar("loss/task", 1, 2.5).unwrap();
    w.add_scalar("accuracy/mnist", 300, 0.9375).unwrap();
    w.add_scalar("big/step", 1 << 40, -1.0e-3).unwrap();
    w.add_text("config", 0, "    {\n      \"seed\": 1\n    }\n")
        .unwrap();
    w.flush().unwrap();
    let files = event_files(&dir);
    assert_eq!(files, vec![w.path().to_path_buf()]);
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    let secs: u64 = name.split('.').nth(3).unwrap().parse().unwrap();
    assert!((secs as f64 - before).abs() < 5.0, "{name}: seconds in the name");

    let recs = records(&std::fs::read(&files[0]).unwrap());
    assert_eq!(recs.len(), 5);
    let events: Vec<Event> = recs.iter().map(|r| event(r)).collect();
    for e in &events {
        assert!((e.wall_time - before).abs() < 60.0, "wall_time {}", e.wall_time);
    }
    assert_eq!(bytes(one(&events[0].fields, 3)), b"brain.Event:2");
    assert_eq!(events[0].step, 0);
    assert_eq!(scalar(&events[1]), ("loss/task".into(), 2.5));
    assert_eq!(events[1].step, 1);
    assert_eq!(scalar(&events[2]), ("accuracy/mnist".into(), 0.9375));
    assert_eq!(events[2].step, 300);
    assert_eq!(scalar(&events[3]), ("big/step".into(), -1.0e-3));
    assert_eq!(events[3].step, 1 << 40);

    // The text: tag, the text plugin's name, a DT_STRING tensor of shape [1] holding the string.
    let summary = decode(&bytes(one(&events[4].fields, 5)));
    let value = decode(&bytes(one(&summary, 1)));
    assert_eq!(bytes(one(&value, 1)), b"config");
    let metadata = decode(&bytes(one(&value, 9)));
    let plugin = decode(&bytes(one(&metadata, 1)));
    assert_eq!(bytes(one(&plugin, 1)), b"text");
    let tensor = decode(&bytes(one(&value, 8)));
    assert_eq!(one(&tensor, 1), Field::Varint(7), "dtype DT_STRING");
    let shape = decode(&bytes(one(&tensor, 2)));
    let dim = decode(&bytes(one(&shape, 2)));
    assert_eq!(one(&dim, 1), Field::Varint(1));
    assert_eq!(bytes(one(&tensor, 8)), b"    {\n      \"seed\": 1\n    }\n");
}

#[test]
fn a_flipped_byte_fails_the_reader() {
    // The reader above is what CI trusts: it must notice damage anywhere in a record.
    let rec = tensorboard::tfrecord(&tensorboard::scalar_event(1.5, 3, "a", 1.0));
    assert_eq!(records(&rec).len(), 1);
    for at in [0, 9, 14, rec.len() - 1] {
        let mut bad = rec.clone();
        bad[at] ^= 0x10;
        assert!(
            std::panic::catch_unwind(|| records(&bad)).is_err(),
            "a flip at byte {at} went unnoticed"
        );
    }
}

#[test]
fn an_epoch_is_logged_under_the_documented_tags() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = EventWriter::create(tmp.path()).unwrap();
    let m = EpochMetrics {
        epoch: 7,
        seconds: 1.25,
        samples_per_second: 48000.0,
        task_loss: 0.5,
        total_loss: 0.75,
        transport: vec![10.0, 20.0, 30.0],
        density: vec![0.1, 0.2, 0.3],
        task_accuracy: vec![0.96, 0.85],
        tasks: Vec::new(),
        accuracy: 0.905,
        modularity: None,
    };
    tensorboard::log_epoch(&mut w, &m, &[3, 4, 5]).unwrap();
    tensorboard::log_config(&mut w, &serde_json::json!({"epochs": 50})).unwrap();
    let recs = records(&std::fs::read(w.path()).unwrap());
    let events: Vec<Event> = recs.iter().map(|r| event(r)).collect();
    let scalars: Vec<(String, f32, i64)> = events[1..events.len() - 1]
        .iter()
        .map(|e| {
            let (t, v) = scalar(e);
            (t, v, e.step)
        })
        .collect();
    let expect: Vec<(&str, f64)> = vec![
        ("loss/task", 0.5),
        ("loss/total", 0.75),
        ("transport/layer3", 10.0),
        ("transport/layer4", 20.0),
        ("transport/layer5", 30.0),
        ("density/layer3", 0.1),
        ("density/layer4", 0.2),
        ("density/layer5", 0.3),
        ("accuracy/mnist", 0.96),
        ("accuracy/fashion-mnist", 0.85),
        ("accuracy/mean", 0.905),
        ("time/epoch_seconds", 1.25),
        ("time/samples_per_second", 48000.0),
    ];
    assert_eq!(scalars.len(), expect.len(), "{scalars:?}");
    for ((tag, v, step), (etag, ev)) in scalars.iter().zip(&expect) {
        assert_eq!((tag.as_str(), *step), (*etag, 7));
        assert_eq!(*v, *ev as f32, "{tag}");
    }
    let last = events.last().unwrap();
    let value = decode(&bytes(one(&decode(&bytes(one(&last.fields, 5))), 1)));
    assert_eq!(bytes(one(&value, 1)), b"config");
}

#[test]
fn two_writers_in_one_directory_get_two_files() {
    let tmp = tempfile::tempdir().unwrap();
    let a = EventWriter::create(tmp.path()).unwrap();
    let b = EventWriter::create(tmp.path()).unwrap();
    assert_ne!(a.path(), b.path());
    assert_eq!(event_files(tmp.path()).len(), 2);
}

#[test]
fn a_directory_that_is_a_file_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    let err = format!("{:#}", EventWriter::create(&file).err().expect("an error"));
    assert!(err.contains("--tensorboard") && err.contains("plain"), "{err}");
}
