use std::path::PathBuf;

use circ_runtime::files::npy::{parse_npy, read_npy, Array, ErrorKind, NpyError};

/// A file as NumPy writes it: `header` padded with spaces and a newline so that the data starts at
/// a multiple of 64 bytes.
fn npy(version: (u8, u8), header: &str, data: &[u8]) -> Vec<u8> {
    let prefix = if version.0 == 1 { 10 } else { 12 };
    let mut header = header.to_string();
    while !(prefix + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    raw(version, header.as_bytes(), data)
}

/// A file with exactly these header bytes.
fn raw(version: (u8, u8), header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut bytes = b"\x93NUMPY".to_vec();
    bytes.extend([version.0, version.1]);
    if version.0 == 1 {
        bytes.extend((header.len() as u16).to_le_bytes());
    } else {
        bytes.extend((header.len() as u32).to_le_bytes());
    }
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(data);
    bytes
}

fn header(descr: &str, fortran: bool, shape: &str) -> String {
    let order = if fortran { "True" } else { "False" };
    format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}")
}

fn parse(bytes: &[u8]) -> Array {
    parse_npy("a.npy", bytes).unwrap_or_else(|e| panic!("{e}"))
}

/// The error `parse_npy` gives for `bytes`, checked to name the file.
fn parse_err(bytes: &[u8]) -> NpyError {
    let err = parse_npy("data/a.npy", bytes).expect_err("should not parse");
    assert_eq!(err.file(), "data/a.npy");
    assert!(err.to_string().starts_with("data/a.npy: "), "{err}");
    err
}

fn message(bytes: &[u8]) -> String {
    parse_err(bytes).to_string()
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{message:?} does not contain {part:?}");
    }
}

fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

// ---------------------------------------------------------------------------------------------
// Files written by NumPy 2.4 (`numpy.lib.format.write_array`), byte for byte
// ---------------------------------------------------------------------------------------------

/// `np.asfortranarray(np.array([[1.5, -2, 3], [4, 5, 6.25]], dtype='>f4'))`, version 1.0.
const NUMPY_F4_BE_FORTRAN: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '>f4', 'fortran_order': True, 'shape': (2, 3), }                                                           \n?\xc0\x00\x00@\x80\x00\x00\xc0\x00\x00\x00@\xa0\x00\x00@@\x00\x00@\xc8\x00\x00";

/// `np.array([[1, -2], [300, -32768], [7, 32767]], dtype='<i2')`, version 2.0.
const NUMPY_I2_V2: &[u8] = b"\x93NUMPY\x02\x00t\x00\x00\x00{'descr': '<i2', 'fortran_order': False, 'shape': (3, 2), }                                                        \n\x01\x00\xfe\xff,\x01\x00\x80\x07\x00\xff\x7f";

/// `np.array(0.333, dtype='<f2')` (a scalar), version 3.0.
const NUMPY_F2_SCALAR_V3: &[u8] = b"\x93NUMPY\x03\x00t\x00\x00\x00{'descr': '<f2', 'fortran_order': False, 'shape': (), }                                                            \nT5";

#[test]
fn reads_files_written_by_numpy() {
    assert_eq!(NUMPY_F4_BE_FORTRAN.len(), 152);
    let a = parse(NUMPY_F4_BE_FORTRAN);
    assert_eq!(a, Array { shape: vec![2, 3], values: vec![1.5, -2.0, 3.0, 4.0, 5.0, 6.25] });

    let a = parse(NUMPY_I2_V2);
    assert_eq!(a, Array { shape: vec![3, 2], values: vec![1.0, -2.0, 300.0, -32768.0, 7.0, 32767.0] });

    let a = parse(NUMPY_F2_SCALAR_V3);
    assert_eq!(a, Array { shape: vec![], values: vec![0.3330078125] });
}

#[test]
fn numpy_padding_matches_the_helper() {
    // The helper pads as NumPy does, so hand-built files have the same layout as real ones.
    let built = npy((1, 0), &header(">f4", true, "(2, 3)"), &NUMPY_F4_BE_FORTRAN[128..]);
    assert_eq!(built, NUMPY_F4_BE_FORTRAN);
    let built = npy((2, 0), &header("<i2", false, "(3, 2)"), &NUMPY_I2_V2[128..]);
    assert_eq!(built, NUMPY_I2_V2);
}

// ---------------------------------------------------------------------------------------------
// Dtypes, byte orders, layouts, versions
// ---------------------------------------------------------------------------------------------

/// One dtype: its letter and size, and how to store a value little- or big-endian.
struct Case {
    code: &'static str,
    values: Vec<f64>,
    encode: fn(f64, bool) -> Vec<u8>,
}

fn bytes_of<const N: usize>(le: [u8; N], big: bool) -> Vec<u8> {
    let mut v = le.to_vec();
    if big {
        v.reverse();
    }
    v
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            code: "f8",
            values: vec![1.5, -0.0, f64::INFINITY, 1e300, -3.25e-310, f64::NAN],
            encode: |v, big| bytes_of(v.to_le_bytes(), big),
        },
        Case {
            code: "f4",
            values: vec![1.5, -0.0, f64::NEG_INFINITY, 3.0e38f32 as f64, 0.1f32 as f64, f64::NAN],
            encode: |v, big| bytes_of((v as f32).to_le_bytes(), big),
        },
        Case {
            // 0x3c00 = 1, 0xc000 = -2, 0x7bff = 65504, 0x0001 = 2^-24, 0x7c00 = inf, 0x3555 ≈ 1/3
            code: "f2",
            values: vec![1.0, -2.0, 65504.0, 2f64.powi(-24), f64::INFINITY, 0.333251953125],
            encode: |v, big| {
                let bits: u16 = match v {
                    1.0 => 0x3c00,
                    -2.0 => 0xc000,
                    65504.0 => 0x7bff,
                    x if x == 2f64.powi(-24) => 0x0001,
                    x if x == f64::INFINITY => 0x7c00,
                    _ => 0x3555,
                };
                bytes_of(bits.to_le_bytes(), big)
            },
        },
        Case {
            code: "i1",
            values: vec![-128.0, 127.0, 0.0, -1.0],
            encode: |v, big| bytes_of((v as i8).to_le_bytes(), big),
        },
        Case {
            code: "i2",
            values: vec![-32768.0, 32767.0, 258.0, -2.0],
            encode: |v, big| bytes_of((v as i16).to_le_bytes(), big),
        },
        Case {
            code: "i4",
            values: vec![-2147483648.0, 2147483647.0, 16909060.0, -5.0],
            encode: |v, big| bytes_of((v as i32).to_le_bytes(), big),
        },
        Case {
            code: "i8",
            values: vec![-9.223372036854776e18, 9007199254740993.0, 72623859790382856.0, -1.0],
            encode: |v, big| bytes_of((v as i64).to_le_bytes(), big),
        },
        Case { code: "u1", values: vec![0.0, 255.0, 128.0], encode: |v, big| bytes_of((v as u8).to_le_bytes(), big) },
        Case {
            code: "u2",
            values: vec![0.0, 65535.0, 258.0],
            encode: |v, big| bytes_of((v as u16).to_le_bytes(), big),
        },
        Case {
            code: "u4",
            values: vec![0.0, 4294967295.0, 16909060.0],
            encode: |v, big| bytes_of((v as u32).to_le_bytes(), big),
        },
        Case {
            code: "u8",
            values: vec![0.0, 1.8446744073709552e19, 72623859790382856.0],
            encode: |v, big| bytes_of((v as u64).to_le_bytes(), big),
        },
        Case { code: "b1", values: vec![1.0, 0.0, 1.0, 1.0], encode: |v, _| vec![v as u8] },
    ]
}

#[test]
fn every_dtype_in_both_byte_orders() {
    for case in cases() {
        let orders: &[(&str, bool)] = if case.code.ends_with('1') {
            &[("|", false), ("<", false), (">", true)]
        } else {
            &[("<", false), (">", true)]
        };
        for &(order, big) in orders {
            let descr = format!("{order}{}", case.code);
            let data: Vec<u8> = case.values.iter().flat_map(|&v| (case.encode)(v, big)).collect();
            let shape = format!("({},)", case.values.len());
            let a = parse(&npy((1, 0), &header(&descr, false, &shape), &data));
            assert_eq!(a.shape, vec![case.values.len()], "{descr}");
            assert!(same(&a.values, &case.values), "{descr}: {:?} != {:?}", a.values, case.values);
        }
    }
}

#[test]
fn bool_bytes_other_than_one_are_true() {
    let a = parse(&npy((1, 0), &header("|b1", false, "(3,)"), &[0, 1, 7]));
    assert_eq!(a.values, vec![0.0, 1.0, 1.0]);
}

#[test]
fn large_integers_round_to_the_nearest_double() {
    let data = [i64::MAX.to_le_bytes(), (9007199254740993i64).to_le_bytes()].concat();
    let a = parse(&npy((1, 0), &header("<i8", false, "(2,)"), &data));
    assert_eq!(a.values, vec![9.223372036854776e18, 9007199254740992.0]);
}

#[test]
fn fortran_order_is_transposed_to_row_major() {
    // Element (i, j, k) of a 2×3×4 array holds 100i + 10j + k; column-major puts i fastest.
    let (d0, d1, d2) = (2, 3, 4);
    let mut column_major = Vec::new();
    for k in 0..d2 {
        for j in 0..d1 {
            for i in 0..d0 {
                column_major.extend(((100 * i + 10 * j + k) as f64).to_le_bytes());
            }
        }
    }
    let a = parse(&npy((1, 0), &header("<f8", true, "(2, 3, 4)"), &column_major));
    let expected: Vec<f64> =
        (0..d0).flat_map(|i| (0..d1).flat_map(move |j| (0..d2).map(move |k| (100 * i + 10 * j + k) as f64))).collect();
    assert_eq!(a.shape, vec![2, 3, 4]);
    assert_eq!(a.values, expected);

    // The same values in C order read the same.
    let row_major: Vec<u8> = expected.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(parse(&npy((1, 0), &header("<f8", false, "(2, 3, 4)"), &row_major)), a);
}

#[test]
fn fortran_order_of_vectors_scalars_and_empty_arrays() {
    let data: Vec<u8> = [1.0f32, 2.0, 3.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(parse(&npy((1, 0), &header("<f4", true, "(3,)"), &data)).values, vec![1.0, 2.0, 3.0]);
    let a = parse(&npy((1, 0), &header("<f4", true, "()"), &data[..4]));
    assert_eq!(a, Array { shape: vec![], values: vec![1.0] });
    let a = parse(&npy((1, 0), &header("<f4", true, "(3, 0, 2)"), &[]));
    assert_eq!(a, Array { shape: vec![3, 0, 2], values: vec![] });
    // A matrix with a dimension of 1 is the same in both orders.
    let a = parse(&npy((1, 0), &header("<f4", true, "(1, 3)"), &data));
    assert_eq!(a.values, vec![1.0, 2.0, 3.0]);
}

#[test]
fn scalars_and_empty_arrays() {
    let a = parse(&npy((1, 0), &header("<f8", false, "()"), &2.5f64.to_le_bytes()));
    assert_eq!(a, Array { shape: vec![], values: vec![2.5] });
    let a = parse(&npy((1, 0), &header("<f8", false, "(0,)"), &[]));
    assert_eq!(a, Array { shape: vec![0], values: vec![] });
    let a = parse(&npy((1, 0), &header("<u2", false, "(0, 5)"), &[]));
    assert_eq!(a, Array { shape: vec![0, 5], values: vec![] });
}

#[test]
fn all_three_versions() {
    let data: Vec<u8> = (1..=6i32).flat_map(|v| v.to_be_bytes()).collect();
    for version in [(1, 0), (2, 0), (3, 0)] {
        let a = parse(&npy(version, &header(">i4", false, "(2, 3)"), &data));
        assert_eq!(a, Array { shape: vec![2, 3], values: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] }, "{version:?}");
    }
}

#[test]
fn large_version_2_header() {
    // Version 2.0 exists for headers over 65535 bytes (many structured fields); padding will do.
    let mut text = header("<f8", false, "(1,)");
    text.push_str(&" ".repeat(70_000));
    let a = parse(&npy((2, 0), &text, &1.0f64.to_le_bytes()));
    assert_eq!(a.values, vec![1.0]);
}

#[test]
fn header_spellings_python_accepts() {
    let one = 7.0f64.to_le_bytes();
    for text in [
        // Double quotes, other key orders, no trailing comma, odd whitespace, no final newline.
        r#"{"descr": "<f8", "fortran_order": False, "shape": (1,)}"#,
        "{'shape': (1,), 'fortran_order': False, 'descr': '<f8'}",
        "  {\n 'descr' :'<f8' ,\t'fortran_order':False,'shape':( 1 , ) , }  \n",
        // Python 2 long integers.
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1L,), }",
        // Escapes in strings.
        "{'de\\x73cr': '\\u003cf8', 'fortran_order': False, 'shape': (1,), }",
        // Native byte order, spelled three ways.
        "{'descr': 'f8', 'fortran_order': False, 'shape': (1,), }",
        "{'descr': '=f8', 'fortran_order': False, 'shape': (1,), }",
        "{'descr': '|f8', 'fortran_order': False, 'shape': (1,), }",
        // A shape in redundant parentheses is still a tuple.
        "{'descr': '<f8', 'fortran_order': False, 'shape': ((1,)), }",
    ] {
        let a = parse(&raw((1, 0), text.as_bytes(), &one));
        assert_eq!(a, Array { shape: vec![1], values: vec![7.0] }, "{text}");
    }
}

#[test]
fn reads_from_disk() {
    let dir = std::env::temp_dir().join(format!("circ-npy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.npy");
    std::fs::write(&path, NUMPY_I2_V2).unwrap();
    let a = read_npy(&path).unwrap();
    assert_eq!(a.shape, vec![3, 2]);

    std::fs::write(&path, b"\x93NUMPY\x09\x00").unwrap();
    let e = read_npy(&path).unwrap_err();
    assert_eq!(e.file(), path.display().to_string());
    assert!(e.to_string().starts_with(&format!("{}: ", path.display())), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn io_error_names_the_path() {
    let path = PathBuf::from("/nonexistent-dir-for-circ/x.npy");
    let e = read_npy(&path).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Io { .. }));
    assert_contains(&e.to_string(), &["/nonexistent-dir-for-circ/x.npy: cannot read: "]);
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn bad_magic() {
    let m = message(b"PK\x03\x04\x14\x00\x00\x00\x08\x00");
    assert_contains(&m, &["not a .npy file", "b\"PK\\x03\\x04\\x14\\x00\"", "\\x93NUMPY"]);
    assert!(matches!(parse_err(b"PK").kind(), ErrorKind::BadMagic { .. }));
    assert_contains(&message(b""), &["not a .npy file: it is empty"]);
    assert_contains(&message(b"\x93NUMPX\x01\x00"), &["not a .npy file"]);
}

#[test]
fn truncated_files() {
    assert_contains(&message(b"\x93NUM"), &["truncated", "after 4 bytes", "magic string and version"]);
    assert_contains(&message(b"\x93NUMPY\x01\x00\x76"), &["truncated", "after 9 bytes", "header length"]);
    assert_contains(&message(b"\x93NUMPY\x02\x00\x76\x00\x00"), &["header length"]);
    let full = npy((1, 0), &header("<f8", false, "(1,)"), &[]);
    assert_contains(
        &message(&full[..50]),
        &["truncated", "after 50 bytes", "inside the header (which ends at byte 128)"],
    );
}

#[test]
fn unsupported_versions() {
    for (major, minor) in [(4, 0), (1, 1), (0, 9), (2, 5)] {
        let file = raw((major, minor), header("<f8", false, "()").as_bytes(), &[0; 8]);
        let e = parse_err(&file);
        assert!(matches!(e.kind(), ErrorKind::UnsupportedVersion { .. }));
        assert_contains(
            &e.to_string(),
            &[&format!("unsupported .npy format version {major}.{minor}"), "1.0, 2.0 and 3.0"],
        );
    }
}

#[test]
fn header_must_be_a_dict() {
    for (text, what) in [
        ("['descr', '<f8']", "a list"),
        ("('<f8', False, (1,))", "a tuple"),
        ("'<f8'", "a string"),
        ("3", "an integer"),
        ("None", "None"),
    ] {
        let m = message(&raw((1, 0), text.as_bytes(), &[]));
        assert_contains(&m, &[&format!("the header is not a dict but {what}")]);
    }
}

#[test]
fn header_syntax_errors() {
    for (text, parts) in [
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (1,)", &["at byte 64", "expected ',' or '}'"][..]),
        ("{'descr': <f8}", &["at byte 20", "expected a value, found character '<'"]),
        ("{'descr': '<f8}", &["at byte 20", "unterminated string"]),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (1,)} x", &["unexpected character 'x' after the end"]),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (1.0,)}", &["only integers are supported"]),
        ("{'descr': '<f8', 'fortran_order': false, 'shape': (1,)}", &["unexpected name 'false'"]),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (01,)}", &["leading zeros"]),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (1 2)}", &["expected ',' or ')', found character '2'"]),
        ("{'descr' '<f8'}", &["expected ':' after a dict key"]),
        ("{['descr']: '<f8'}", &["a list cannot be a dict key"]),
        ("{'descr': '\\q'}", &["unsupported escape sequence \\q"]),
        ("{'descr': '\\x4'}", &["invalid \\x escape"]),
        ("", &["expected a value, found end of header"]),
        ("{'shape': (99999999999999999999999999999999999999999,)}", &["too large"]),
    ] {
        let e = parse_err(&raw((1, 0), text.as_bytes(), &[]));
        assert!(matches!(e.kind(), ErrorKind::HeaderSyntax { .. }), "{text}: {e}");
        let m = e.to_string();
        assert_contains(&m, &["the header is not a valid Python literal"]);
        assert_contains(&m, parts);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let text = "(".repeat(100_000);
    let m = message(&raw((2, 0), text.as_bytes(), &[]));
    assert_contains(&m, &["nested more than"]);
}

#[test]
fn header_encodings() {
    // Versions 1.0 and 2.0 are Latin-1: byte 0xe9 is 'é'.
    let m = message(&raw((1, 0), b"{'caf\xe9': 1}", &[]));
    assert_contains(&m, &["unexpected key 'café'"]);
    // Version 3.0 is UTF-8.
    let m = message(&raw((3, 0), "{'café': 1}".as_bytes(), &[]));
    assert_contains(&m, &["unexpected key 'café'"]);
    let m = message(&raw((3, 0), b"{'caf\xe9': 1}", &[]));
    assert_contains(&m, &["must be UTF-8, but byte 17 is not"]);
}

#[test]
fn missing_unknown_and_duplicate_keys() {
    let m = message(&npy((1, 0), "{'descr': '<f8', 'fortran_order': False}", &[]));
    assert_contains(&m, &["the header has no 'shape' key"]);
    let m = message(&npy((1, 0), "{'shape': (), 'fortran_order': False}", &[]));
    assert_contains(&m, &["the header has no 'descr' key"]);
    let m = message(&npy((1, 0), "{'shape': (), 'descr': '<f8'}", &[]));
    assert_contains(&m, &["the header has no 'fortran_order' key"]);
    let m = message(&npy((1, 0), "{'descr': '<f8', 'fortran_order': False, 'shape': (), 'x': 1}", &[]));
    assert_contains(&m, &["unexpected key 'x'", "only 'descr', 'fortran_order' and 'shape'"]);
    let m = message(&npy((1, 0), "{'descr': '<f8', 'fortran_order': False, 'shape': (), 3: 1}", &[]));
    assert_contains(&m, &["unexpected key 3"]);
    let m = message(&npy((1, 0), "{'descr': '<f8', 'fortran_order': False, 'shape': (), 'shape': ()}", &[]));
    assert_contains(&m, &["gives the key 'shape' twice"]);
}

#[test]
fn invalid_values() {
    for (text, part) in [
        ("{'descr': '<f8', 'fortran_order': 0, 'shape': ()}", "'fortran_order' must be True or False, not 0"),
        ("{'descr': '<f8', 'fortran_order': 'no', 'shape': ()}", "'fortran_order' must be True or False, not 'no'"),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': [3]}",
            "'shape' must be a tuple of non-negative integers, not [3]",
        ),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (3)}", "not 3"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (2, -1)}", "not (2, -1)"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': ('3',)}", "not ('3',)"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': None}", "not None"),
        ("{'descr': 8, 'fortran_order': False, 'shape': ()}", "'descr' must be a dtype string such as '<f8', not 8"),
    ] {
        let e = parse_err(&npy((1, 0), text, &[]));
        assert!(matches!(e.kind(), ErrorKind::InvalidValue { .. }), "{text}: {e}");
        assert_contains(&e.to_string(), &[part]);
    }
}

#[test]
fn unsupported_dtypes() {
    for (descr, part) in [
        ("'|O'", "unsupported dtype '|O': object arrays"),
        ("'<U3'", "unsupported dtype '<U3': unicode string"),
        ("'|S2'", "unsupported dtype '|S2': byte string"),
        ("'|V4'", "void"),
        ("'<c16'", "complex numbers"),
        ("'<M8[ns]'", "datetimes"),
        ("'<m8[s]'", "timedeltas"),
        ("'<f16'", "extended-precision floats"),
        ("[('x', '<f4'), ('y', '<i2')]", "unsupported dtype [('x', '<f4'), ('y', '<i2')]: structured dtypes"),
        ("'float64'", "unsupported dtype 'float64': not a dtype this reader knows"),
        ("'<f3'", "unsupported dtype '<f3'"),
        ("'<i16'", "unsupported dtype '<i16'"),
        ("'<b2'", "unsupported dtype '<b2'"),
        ("''", "unsupported dtype ''"),
        ("'<'", "unsupported dtype '<'"),
    ] {
        let text = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': (2,), }}");
        let e = parse_err(&npy((1, 0), &text, &[0; 32]));
        assert!(matches!(e.kind(), ErrorKind::UnsupportedDType { .. }), "{descr}: {e}");
        assert_contains(&e.to_string(), &[part]);
    }
}

#[test]
fn data_length_mismatch() {
    let e = parse_err(&npy((1, 0), &header("<f8", false, "(3, 4)"), &[0; 95]));
    assert!(matches!(e.kind(), ErrorKind::DataLength { expected: 96, found: 95, .. }));
    assert_contains(
        &e.to_string(),
        &["data length mismatch: expected 96 bytes for shape (3, 4) of dtype '<f8', found 95"],
    );
    // Extra bytes are an error too.
    let m = message(&npy((1, 0), &header(">i2", false, "(5,)"), &[0; 12]));
    assert_contains(&m, &["expected 10 bytes for shape (5,) of dtype '>i2', found 12"]);
    let m = message(&npy((1, 0), &header("<f4", false, "()"), &[]));
    assert_contains(&m, &["expected 4 bytes for shape () of dtype '<f4', found 0"]);
    // A huge declared shape is caught before anything is allocated.
    let m = message(&npy((1, 0), &header("<f8", false, "(1099511627776, 1099511627776)"), &[0; 8]));
    assert_contains(&m, &["expected 9671406556917033397649408 bytes", "found 8"]);
    let big = "(18446744073709551615, 18446744073709551615, 18446744073709551615)";
    let m = message(&npy((1, 0), &header("<f8", false, big), &[0; 8]));
    assert_contains(&m, &["'shape' must be"]);
}

#[test]
fn errors_display_and_debug() {
    let e = parse_err(&npy((1, 0), &header("|O", false, "(1,)"), &[0; 8]));
    assert!(std::error::Error::source(&e).is_none());
    assert!(!format!("{e:?}").is_empty());
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert!(boxed.to_string().contains("object arrays"));
}
