use std::path::{Path, PathBuf};

use circ_runtime::files::safetensors::{
    self, find, parse, read, serialize, write, DType, ErrorKind, NamedTensor, SafetensorsError,
};

fn tensor(name: &str, shape: &[usize], values: &[f64]) -> NamedTensor {
    NamedTensor { name: name.to_string(), shape: shape.to_vec(), values: values.to_vec() }
}

fn meta(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A file from a header (padded with spaces to a multiple of 8 bytes) and a data buffer.
fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut header = header.to_string();
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// The error `parse` gives for `bytes`, checked to name the file.
fn parse_err(bytes: &[u8]) -> SafetensorsError {
    let err = parse("ckpt.safetensors", bytes).expect_err("should not parse");
    assert_eq!(err.file(), "ckpt.safetensors");
    assert!(err.to_string().starts_with("ckpt.safetensors: "), "{err}");
    err
}

fn message(bytes: &[u8]) -> String {
    parse_err(bytes).to_string()
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{message:?} should contain {part:?}");
    }
}

/// A fresh directory in the system's temporary folder, removed with its contents when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("circ-safetensors-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn round_trip(
    dir: &Path,
    tensors: &[NamedTensor],
    dtype: DType,
    metadata: &[(String, String)],
) -> (Vec<NamedTensor>, Vec<(String, String)>) {
    let path = dir.join("model.safetensors");
    write(&path, tensors, dtype, metadata).unwrap();
    read(&path).unwrap()
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

#[test]
fn round_trip_f64_is_exact() {
    let dir = TempDir::new("f64");
    let tensors = vec![
        tensor("weight", &[2, 3], &[1.0, -2.5, 0.1, f64::MAX, f64::MIN_POSITIVE, 5e-324]),
        tensor("bias", &[3], &[-0.0, f64::INFINITY, f64::NEG_INFINITY]),
        tensor("scale", &[], &[std::f64::consts::PI]),
        tensor("empty", &[0, 4], &[]),
        tensor("nan", &[1, 1, 1], &[f64::NAN]),
    ];
    let (back, metadata) = round_trip(&dir.0, &tensors, DType::F64, &[]);
    assert!(metadata.is_empty());
    // Read back in data order, which is name order.
    let names: Vec<&str> = back.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["bias", "empty", "nan", "scale", "weight"]);
    for t in &tensors {
        let b = find(&back, &t.name).unwrap();
        assert_eq!(b.shape, t.shape);
        assert_eq!(bits(&b.values), bits(&t.values), "{}", t.name);
    }
}

#[test]
fn round_trip_f32_rounds_to_f32() {
    let dir = TempDir::new("f32");
    let tensors = vec![
        tensor("exact", &[4], &[1.0, -2.5, 0.375, 65536.0]),
        tensor("rounded", &[2], &[0.1, 1.0 / 3.0]),
        tensor("scalar", &[], &[-7.0]),
    ];
    let (back, _) = round_trip(&dir.0, &tensors, DType::F32, &[]);
    assert_eq!(find(&back, "exact").unwrap().values, [1.0, -2.5, 0.375, 65536.0]);
    assert_eq!(find(&back, "rounded").unwrap().values, [0.1f32 as f64, (1.0f32 / 3.0) as f64]);
    let scalar = find(&back, "scalar").unwrap();
    assert_eq!(scalar.shape, Vec::<usize>::new());
    assert_eq!(scalar.values, [-7.0]);
    // Four bytes per value: 8 (length) + header + 4 * 7.
    let len = std::fs::metadata(dir.0.join("model.safetensors")).unwrap().len();
    let header_len =
        u64::from_le_bytes(std::fs::read(dir.0.join("model.safetensors")).unwrap()[..8].try_into().unwrap());
    assert_eq!(len, 8 + header_len + 4 * 7);
    assert_eq!(header_len % 8, 0);
}

#[test]
fn round_trip_empty_list() {
    let dir = TempDir::new("empty");
    let (back, metadata) = round_trip(&dir.0, &[], DType::F32, &[]);
    assert!(back.is_empty() && metadata.is_empty());
    // `{}` padded to 8 bytes.
    assert_eq!(std::fs::read(dir.0.join("model.safetensors")).unwrap(), b"\x08\0\0\0\0\0\0\0{}      ");

    let m = meta(&[("epoch", "3")]);
    let (back, metadata) = round_trip(&dir.0, &[], DType::F64, &m);
    assert!(back.is_empty());
    assert_eq!(metadata, m);
}

#[test]
fn round_trip_unicode_and_escaped_names() {
    let dir = TempDir::new("unicode");
    let names = ["权重", "émoji 🎉", "quote\"back\\slash/", "tab\tnew\nline\r", "\u{1}\u{1f}\u{7f}", "", "__metadata"];
    let tensors: Vec<NamedTensor> = names.iter().enumerate().map(|(i, n)| tensor(n, &[1], &[i as f64])).collect();
    let (back, _) = round_trip(&dir.0, &tensors, DType::F64, &[]);
    assert_eq!(back.len(), names.len());
    for (i, n) in names.iter().enumerate() {
        assert_eq!(find(&back, n).unwrap().values, [i as f64], "{n:?}");
    }
}

#[test]
fn round_trip_metadata_in_order() {
    let dir = TempDir::new("metadata");
    let m = meta(&[("format", "pt"), ("circuit", "mlp.circ"), ("note", "line\n\"quoted\" ✓"), ("", "")]);
    let (back, metadata) = round_trip(&dir.0, &[tensor("w", &[1], &[2.0])], DType::F32, &m);
    assert_eq!(metadata, m);
    assert_eq!(back, [tensor("w", &[1], &[2.0])]);
}

#[test]
fn write_replaces_an_existing_file() {
    let dir = TempDir::new("replace");
    let path = dir.0.join("model.safetensors");
    write(&path, &[tensor("old", &[1], &[1.0])], DType::F32, &[]).unwrap();
    write(&path, &[tensor("new", &[2], &[2.0, 3.0])], DType::F64, &[]).unwrap();
    let (back, _) = read(&path).unwrap();
    assert_eq!(back, [tensor("new", &[2], &[2.0, 3.0])]);
    assert_eq!(dir.entries(), ["model.safetensors"]);
}

// ---------------------------------------------------------------------------------------------
// The exact bytes
// ---------------------------------------------------------------------------------------------

#[test]
fn writes_the_reference_layout_byte_for_byte() {
    let tensors = [tensor("b", &[2], &[1.0, -2.0]), tensor("a", &[], &[0.5])];
    let metadata = meta(&[("format", "pt")]);
    // 138 bytes of JSON: metadata first, then the tensors sorted by name, compact; 6 spaces of
    // padding make 144 = 0x90.
    let mut expected: Vec<u8> = vec![0x90, 0, 0, 0, 0, 0, 0, 0];
    expected.extend_from_slice(
        br#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}      "#,
    );
    expected.extend_from_slice(&[0x00, 0x00, 0x00, 0x3f]); // a = 0.5
    expected.extend_from_slice(&[0x00, 0x00, 0x80, 0x3f]); // b[0] = 1.0
    expected.extend_from_slice(&[0x00, 0x00, 0x00, 0xc0]); // b[1] = -2.0
    assert_eq!(serialize("x", &tensors, DType::F32, &metadata).unwrap(), expected);

    let dir = TempDir::new("bytes");
    let path = dir.0.join("small.safetensors");
    write(&path, &tensors, DType::F32, &metadata).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), expected);

    // F64, no metadata: `{"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}` is 54 bytes, 56
    // with its padding.
    let mut expected: Vec<u8> = vec![56, 0, 0, 0, 0, 0, 0, 0];
    expected.extend_from_slice(br#"{"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}  "#);
    expected.extend_from_slice(&1.5f64.to_le_bytes());
    assert_eq!(serialize("x", &[tensor("x", &[1], &[1.5])], DType::F64, &[]).unwrap(), expected);
}

#[test]
fn writes_escapes_as_serde_json_does() {
    let bytes = serialize("x", &[tensor("a\"\\\n\u{1}é/", &[0], &[])], DType::F32, &[]).unwrap();
    let header = std::str::from_utf8(&bytes[8..]).unwrap().trim_end();
    assert_eq!(header, r#"{"a\"\\\n\u0001é/":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#);
}

#[test]
fn parses_files_other_writers_may_produce() {
    // Whitespace, escapes, tensors in the header in another order than their data, data not in
    // name order, metadata last, a zero-size tensor in the middle.
    let header = "\n { \"z\" : {\"shape\": [2], \"dtype\": \"F32\", \"data_offsets\": [ 0 , 8 ]},\r\n\
                  \"\\u00e9\\ud83c\\udf89\\/\": {\"data_offsets\": [16, 24], \"dtype\": \"F64\", \"shape\": [1, 1]},\t\
                  \"e\": {\"dtype\": \"F64\", \"shape\": [0], \"data_offsets\": [8, 8]},\
                  \"a\": {\"dtype\": \"I32\", \"shape\": [2], \"data_offsets\": [8, 16]},\
                  \"__metadata__\": {\"k\": \"v\\u0041\"} } ";
    let mut data = Vec::new();
    data.extend_from_slice(&1.5f32.to_le_bytes());
    data.extend_from_slice(&(-3.0f32).to_le_bytes());
    data.extend_from_slice(&(-7i32).to_le_bytes());
    data.extend_from_slice(&i32::MAX.to_le_bytes());
    data.extend_from_slice(&0.25f64.to_le_bytes());
    let (tensors, metadata) = parse("other", &file(header, &data)).unwrap();
    let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["z", "e", "a", "é🎉/"]);
    assert_eq!(find(&tensors, "z").unwrap().values, [1.5, -3.0]);
    assert_eq!(find(&tensors, "a").unwrap().values, [-7.0, i32::MAX as f64]);
    assert_eq!(find(&tensors, "e").unwrap().values, Vec::<f64>::new());
    assert_eq!(find(&tensors, "é🎉/").unwrap().shape, [1, 1]);
    assert_eq!(find(&tensors, "é🎉/").unwrap().values, [0.25]);
    assert!(find(&tensors, "missing").is_none());
    assert_eq!(metadata, meta(&[("k", "vA")]));
}

// ---------------------------------------------------------------------------------------------
// Other dtypes
// ---------------------------------------------------------------------------------------------

fn decode(dtype: &str, size: usize, raw: &[u8]) -> Vec<f64> {
    let n = raw.len() / size;
    let header = format!(r#"{{"t":{{"dtype":"{dtype}","shape":[{n}],"data_offsets":[0,{}]}}}}"#, raw.len());
    let (tensors, _) = parse("t", &file(&header, raw)).unwrap();
    tensors.into_iter().next().unwrap().values
}

fn u16s(values: &[u16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn decodes_f16() {
    let patterns = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x3555, 0x3bff, 0x0000, 0x8000, 0x7c00, 0xfc00];
    let expected = [
        1.0,
        -2.0,
        65504.0,
        5.960464477539063e-8, // 2^-24, the smallest subnormal
        6.097555160522461e-5, // the largest subnormal, 1023 × 2^-24
        6.103515625e-5,       // 2^-14, the smallest normal
        0.333251953125,
        0.99951171875,
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    let values = decode("F16", 2, &u16s(&patterns));
    assert_eq!(bits(&values), bits(&expected));
    assert!(decode("F16", 2, &u16s(&[0x7e00, 0xfc01]))[..].iter().all(|v| v.is_nan()));
}

#[test]
fn decodes_bf16() {
    let patterns = [0x3f80, 0xc000, 0x4049, 0x7f7f, 0x0080, 0x0001, 0x8000, 0x7f80, 0xff80];
    let expected = [
        1.0,
        -2.0,
        3.140625,
        3.3895313892515355e38,  // the largest finite bf16
        1.1754943508222875e-38, // 2^-126
        9.183549615799121e-41,  // 2^-133, the smallest subnormal
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    let values = decode("BF16", 2, &u16s(&patterns));
    assert_eq!(bits(&values), bits(&expected));
    assert!(decode("BF16", 2, &u16s(&[0x7fc0]))[0].is_nan());
}

#[test]
fn decodes_integers() {
    let raw: Vec<u8> = [-3i64, 0, 1 << 40, i64::MIN].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(decode("I64", 8, &raw), [-3.0, 0.0, (1u64 << 40) as f64, -9.223372036854776e18]);
    let raw: Vec<u8> = [-1i32, 42, i32::MIN].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(decode("I32", 4, &raw), [-1.0, 42.0, i32::MIN as f64]);
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

const GOOD: &str = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;

#[test]
fn error_too_short() {
    let err = parse_err(b"\x08\0\0\0");
    assert!(matches!(err.kind(), ErrorKind::TooShort { len: 4 }));
    assert_contains(&err.to_string(), &["too short", "4 bytes"]);
    assert_contains(&message(b""), &["too short", "0 bytes"]);
}

#[test]
fn error_header_length_beyond_the_file() {
    let mut bytes = 100u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    assert_contains(
        &message(&bytes),
        &["not a safetensors file", "give 100, past the end of the file", "only 2 bytes"],
    );
    let bytes = u64::MAX.to_le_bytes();
    let err = parse_err(&bytes);
    assert!(matches!(err.kind(), ErrorKind::HeaderTooLarge { header_len: u64::MAX }));
    assert_contains(&err.to_string(), &["not a safetensors file", "are not a header length"]);
}

/// A file of something else (here CSV text) read as a checkpoint is named for what it is not,
/// before the huge length its first 8 bytes read as (issue 17, point 10).
#[test]
fn error_other_file_is_not_a_safetensors_file() {
    let m = message(b"a,b,y\n0.5,-1,1\n1.5,0.25,-2\n");
    assert!(m.contains(": not a safetensors file: "), "{m}");
}

#[test]
fn error_header_not_utf8() {
    let mut bytes = 8u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{\"a\xff\":1}");
    let m = message(&bytes[..16]);
    assert_contains(&m, &["not valid UTF-8 at byte 11"]);
}

#[test]
fn error_header_not_json() {
    let cases: &[(&str, &[&str])] = &[
        (r#"{"w":}"#, &["not valid JSON at byte 13", "expected a value, found '}'"]),
        (
            r#"{"w":{"dtype":"F32"}"#,
            &["not valid JSON at byte 32", "expected ',' or '}' in an object, found the end of the header"],
        ),
        (r#"[1, 2]"#, &["at byte 8", "must be a JSON object, but it starts with '['"]),
        ("", &["must be a JSON object, but it starts with the end of the header"]),
        (r#"{"w":{}} x"#, &["at byte 17", "unexpected `x` after the header object"]),
        (r#"{"w":{}},"#, &["unexpected ',' after the header object"]),
        (r#"{'w':{}}"#, &["expected a string key, found '\\''"]),
        (r#"{"w":{"shape":[NaN]}}"#, &["at byte 23", "`NaN` is not a JSON value"]),
        (r#"{"w":{"shape":[Infinity]}}"#, &["`Infinity` is not a JSON value"]),
        (r#"{"w":{"shape":[01]}}"#, &["leading zero"]),
        (r#"{"w":{"shape":[1.]}}"#, &["expected a digit after '.'"]),
        (r#"{"w":{"shape":[+1]}}"#, &["expected a value, found '+'"]),
        (r#"{"w":{"shape":[1,]}}"#, &["expected a value, found ']'"]),
        (r#"{"w":{"dtype":"F32",}}"#, &["expected a string key, found '}'"]),
        (r#"{"w\x":{}}"#, &["at byte 11", "invalid escape: backslash followed by `x`"]),
        (r#"{"\ud800":{}}"#, &["unpaired surrogate"]),
        (r#"{"\udc00":{}}"#, &["unpaired surrogate"]),
        (r#"{"\ud800\u0041":{}}"#, &["must be followed by a low one"]),
        (r#"{"\u12":{}}"#, &["expected 4 hex digits after \\u"]),
        ("{\"a\tb\":{}}", &["control character U+0009 inside a string must be escaped"]),
        (r#"{"w":{"dtype":"F32""#, &["expected ',' or '}' in an object, found the end of the header"]),
        (r#"{"w"#, &["unterminated string"]),
        (r#"{"__metadata__":{"a":"1","a":"2"}}"#, &["at byte 33", "duplicate key \"a\""]),
    ];
    for (header, parts) in cases {
        let m = message(&file(header, &[]));
        assert_contains(&m, parts);
    }
    let deep = format!("{{\"w\":{}{}}}", "[".repeat(100), "]".repeat(100));
    assert_contains(&message(&file(&deep, &[])), &["nested deeper than 64 levels"]);
}

#[test]
fn error_duplicate_names() {
    let header = r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    let m = message(&file(header, &[0; 8]));
    assert_contains(&m, &["tensor \"w\" appears twice in the header (again at byte 62)"]);
    let header = r#"{"__metadata__":{},"__metadata__":{}}"#;
    assert_contains(&message(&file(header, &[])), &["\"__metadata__\" appears twice"]);
}

#[test]
fn error_missing_fields() {
    for (header, field) in [
        (r#"{"w":{"shape":[2],"data_offsets":[0,8]}}"#, "dtype"),
        (r#"{"w":{"dtype":"F32","data_offsets":[0,8]}}"#, "shape"),
        (r#"{"w":{"dtype":"F32","shape":[2]}}"#, "data_offsets"),
    ] {
        let m = message(&file(header, &[0; 8]));
        assert_eq!(m, format!("ckpt.safetensors: tensor \"w\" has no \"{field}\""));
    }
}

#[test]
fn error_malformed_entries() {
    let cases: &[(&str, &str)] = &[
        (r#"{"w":[1]}"#, "tensor \"w\": must be an object with dtype, shape and data_offsets, not an array"),
        (
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}}"#,
            "tensor \"w\": unknown field \"extra\"",
        ),
        (
            r#"{"w":{"dtype":32,"shape":[2],"data_offsets":[0,8]}}"#,
            "tensor \"w\": dtype must be a string, not the number 32",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}"#,
            "tensor \"w\": shape must be an array, not the number 2",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#,
            "tensor \"w\": shape[0]: 2.0 is not an integer",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[1,2e0],"data_offsets":[0,8]}}"#,
            "tensor \"w\": shape[1]: 2e0 is not an integer",
        ),
        (r#"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, "tensor \"w\": shape[0]: -2 is negative"),
        (
            r#"{"w":{"dtype":"F32","shape":[true],"data_offsets":[0,8]}}"#,
            "tensor \"w\": shape[0]: expected a non-negative integer, found the boolean true",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[null],"data_offsets":[0,8]}}"#,
            "tensor \"w\": shape[0]: expected a non-negative integer, found null",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}"#,
            "tensor \"w\": shape[0]: expected a non-negative integer, found the string \"2\"",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}}"#,
            "tensor \"w\": shape[0]: 99999999999999999999 is too large",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#,
            "tensor \"w\": data_offsets must be an array of two integers, not an array",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8.5]}}"#,
            "tensor \"w\": data_offsets[1]: 8.5 is not an integer",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
            "tensor \"w\": data_offsets [8, 0] end before they begin",
        ),
        (
            r#"{"__metadata__":{"epoch":3}}"#,
            "\"__metadata__\": the value of \"epoch\" must be a string, not the number 3",
        ),
        (r#"{"__metadata__":["a"]}"#, "\"__metadata__\": must be an object of strings, not an array"),
        (
            r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296,4294967296,4294967296],"data_offsets":[0,8]}}"#,
            "tensor \"w\": shape [4294967296, 4294967296, 4294967296, 4294967296, 4294967296] has too many elements",
        ),
    ];
    for (header, expected) in cases {
        assert_eq!(message(&file(header, &[0; 8])), format!("ckpt.safetensors: {expected}"), "{header}");
    }
}

#[test]
fn error_dtypes() {
    let m = message(&file(r#"{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#, &[0; 16]));
    assert_eq!(m, "ckpt.safetensors: tensor \"w\" has unknown dtype \"F128\"");
    let m = message(&file(r#"{"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#, &[0; 4]));
    assert_eq!(m, "ckpt.safetensors: tensor \"w\" has unknown dtype \"f32\"");
    for dtype in ["U8", "BOOL", "I8", "U64", "F8_E4M3"] {
        let header = format!(r#"{{"w":{{"dtype":"{dtype}","shape":[1],"data_offsets":[0,1]}}}}"#);
        let m = message(&file(&header, &[0; 1]));
        assert_contains(
            &m,
            &[&format!("tensor \"w\" has dtype {dtype}, which is not supported"), "F64, F32, F16, BF16, I64 and I32"],
        );
    }
}

#[test]
fn error_size_mismatch() {
    let m = message(&file(r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#, &[0; 20]));
    assert_eq!(
        m,
        "ckpt.safetensors: tensor \"w\" of dtype F32 and shape [2, 3] needs 24 bytes but its data_offsets [0, 20] span 20"
    );
    let m = message(&file(r#"{"s":{"dtype":"BF16","shape":[],"data_offsets":[0,0]}}"#, &[]));
    assert_contains(&m, &["shape [] needs 2 bytes but its data_offsets [0, 0] span 0"]);
}

#[test]
fn error_overlap_and_gaps() {
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
    assert_eq!(
        message(&file(header, &[0; 12])),
        "ckpt.safetensors: tensor \"b\" (data_offsets [4, 12]) overlaps tensor \"a\", which ends at 8"
    );
    // An empty tensor inside another one overlaps it too.
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#;
    assert_contains(
        &message(&file(header, &[0; 8])),
        &["tensor \"e\" (data_offsets [4, 4]) overlaps tensor \"a\", which ends at 8"],
    );
    let header = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#;
    assert_eq!(
        message(&file(header, &[0; 12])),
        "ckpt.safetensors: bytes 4..8 of the data buffer belong to no tensor (tensor \"b\" begins at 8)"
    );
    let header = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    assert_eq!(
        message(&file(header, &[0; 8])),
        "ckpt.safetensors: the data buffer does not start with a tensor: the first, \"a\", begins at 4"
    );
}

#[test]
fn error_buffer_length() {
    assert_eq!(
        message(&file(GOOD, &[0; 9])),
        "ckpt.safetensors: the tensors take 8 bytes but the data buffer after the header has 9"
    );
    assert_eq!(
        message(&file(GOOD, &[0; 7])),
        "ckpt.safetensors: the tensors take 8 bytes but the data buffer after the header has 7"
    );
    assert_contains(
        &message(&file("{}", &[1])),
        &["the tensors take 0 bytes but the data buffer after the header has 1"],
    );
    // The file itself is fine.
    assert_eq!(parse("x", &file(GOOD, &[0; 8])).unwrap().0[0].values, [0.0, 0.0]);
}

#[test]
fn error_reading_a_missing_file_names_the_path() {
    let dir = TempDir::new("missing");
    let path = dir.0.join("nope.safetensors");
    let err = read(&path).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Io { action: "read", .. }));
    assert!(std::error::Error::source(&err).is_some());
    let m = err.to_string();
    assert!(m.starts_with(&format!("{}: cannot read: ", path.display())), "{m}");
}

#[test]
fn errors_in_files_name_the_path() {
    let dir = TempDir::new("bad");
    let path = dir.0.join("bad.safetensors");
    std::fs::write(&path, file(GOOD, &[0; 3])).unwrap();
    let err = read(&path).unwrap_err();
    assert_eq!(err.file(), path.display().to_string());
    assert!(err.to_string().starts_with(&format!("{}: the tensors take 8 bytes", path.display())));
}

#[test]
fn write_rejects_bad_input_and_leaves_the_old_file() {
    let dir = TempDir::new("reject");
    let path = dir.0.join("model.safetensors");
    write(&path, &[tensor("w", &[1], &[1.0])], DType::F32, &[]).unwrap();
    let before = std::fs::read(&path).unwrap();
    let p = path.display().to_string();
    type Case = (Vec<NamedTensor>, Vec<(String, String)>, String);
    let cases: Vec<Case> = vec![
        (
            vec![tensor("w", &[2, 3], &[0.0; 5])],
            vec![],
            format!("{p}: tensor \"w\" has shape [2, 3] (6 elements) but 5 values"),
        ),
        (vec![tensor("s", &[], &[])], vec![], format!("{p}: tensor \"s\" has shape [] (1 element) but 0 values")),
        (
            vec![tensor("a", &[1], &[0.0]), tensor("a", &[1], &[1.0])],
            vec![],
            format!("{p}: two tensors are called \"a\""),
        ),
        (
            vec![tensor("__metadata__", &[1], &[0.0])],
            vec![],
            format!("{p}: a tensor cannot be called \"__metadata__\""),
        ),
        (vec![], meta(&[("k", "1"), ("j", "2"), ("k", "3")]), format!("{p}: metadata key \"k\" is given twice")),
    ];
    for (tensors, metadata, expected) in cases {
        let err = write(&path, &tensors, DType::F64, &metadata).unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(dir.entries(), ["model.safetensors"]);
}

// ---------------------------------------------------------------------------------------------
// Atomicity
// ---------------------------------------------------------------------------------------------

#[test]
fn write_leaves_no_temporary_file() {
    let dir = TempDir::new("atomic");
    let path = dir.0.join("ckpt.safetensors");
    for i in 0..3 {
        write(&path, &[tensor("w", &[2], &[i as f64, 1.0])], DType::F32, &[]).unwrap();
        assert_eq!(dir.entries(), ["ckpt.safetensors"]);
    }
}

#[test]
fn write_into_a_missing_directory_fails_cleanly() {
    let dir = TempDir::new("nodir");
    let path = dir.0.join("no").join("such").join("model.safetensors");
    let err = write(&path, &[tensor("w", &[1], &[1.0])], DType::F32, &[]).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Io { action: "create a temporary file in", .. }), "{err:?}");
    let m = err.to_string();
    let dir_shown = path.parent().unwrap().display().to_string();
    assert!(m.starts_with(&format!("{}: cannot create a temporary file in {dir_shown}: ", path.display())), "{m}");
    assert!(dir.entries().is_empty());
    assert!(!path.exists());
}

#[test]
fn a_directory_target_is_refused_and_kept() {
    // The target is a directory: refused before anything is written, and kept as it is.
    let dir = TempDir::new("rename");
    let path = dir.0.join("model.safetensors");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("keep"), b"x").unwrap();
    let err = write(&path, &[tensor("w", &[1], &[1.0])], DType::F32, &[]).unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");
    assert_eq!(dir.entries(), ["model.safetensors"]);
    assert!(path.join("keep").exists());
}

#[test]
fn write_to_a_path_without_a_file_name_fails() {
    let err = write(Path::new("/"), &[], DType::F32, &[]).unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");
    let err = write(Path::new(""), &[], DType::F32, &[]).unwrap_err();
    assert!(err.to_string().contains("does not name a file"), "{err}");
}

#[test]
fn write_with_a_relative_bare_file_name() {
    // A path with no directory part goes to (and takes its temporary file in) the current
    // directory; use a unique name and clean up.
    let name = format!("circ-safetensors-test-{}-bare.safetensors", std::process::id());
    let path = Path::new(&name);
    let result = write(path, &[tensor("w", &[1], &[4.0])], DType::F64, &[]).and_then(|()| read(path));
    let _ = std::fs::remove_file(path);
    assert_eq!(result.unwrap().0, [tensor("w", &[1], &[4.0])]);
}

#[test]
fn error_is_a_std_error() {
    fn takes(_: &dyn std::error::Error) {}
    let err = parse("x", b"").unwrap_err();
    takes(&err);
    let _ = safetensors::MAX_HEADER_LEN;
}
