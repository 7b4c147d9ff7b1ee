use std::path::{Path, PathBuf};

use circ_runtime::files::csv::{parse_csv, parse_csv_columns, read_csv, CsvErrorKind, Table};

fn parse(text: &str) -> Table {
    parse_csv("data.csv", text).unwrap_or_else(|e| panic!("unexpected error: {e}"))
}

fn err(text: &str) -> String {
    match parse_csv("data.csv", text) {
        Ok(t) => panic!("expected an error, got a table of {} rows x {} columns", t.rows, t.columns.len()),
        Err(e) => e.to_string(),
    }
}

/// The data folder of the repository (`data/`, beside this crate's folder).
fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

/// A file in the system's temporary folder, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, bytes: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("circ-csv-test-{}-{tag}.csv", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ---- reading ----

#[test]
fn reads_numbers_column_major() {
    let t = parse("x,y,z\n1,2.5,-3\n4,1.5e-3,-0.0\n");
    assert_eq!(t.columns, ["x", "y", "z"]);
    assert_eq!(t.rows, 2);
    assert_eq!(t.ncols(), 3);
    assert_eq!(t.name(), "data.csv");
    assert_eq!(t.column("x"), Some(&[1.0, 4.0][..]));
    assert_eq!(t.column("y"), Some(&[2.5, 1.5e-3][..]));
    assert_eq!(t.column("w"), None);
    assert_eq!(t.column_index("z"), Some(2));
    assert_eq!(t.column_index("Z"), None);
    assert_eq!(t.column_at(2), &[-3.0, -0.0][..]);
    assert_eq!(t.get(0, 1), 2.5);
    assert_eq!(t.get(1, 0), 4.0);
    assert!(t.get(1, 2) == 0.0 && t.get(1, 2).is_sign_negative(), "-0.0 keeps its sign");
    assert_eq!(t.data(), &[1.0, 4.0, 2.5, 1.5e-3, -3.0, -0.0][..]);
}

#[test]
fn accepts_the_usual_number_forms() {
    let t = parse("v\n3\n+2\n.5\n5.\n1E3\n-7e-2\n0.1\n");
    assert_eq!(t.column("v").unwrap(), &[3.0, 2.0, 0.5, 5.0, 1000.0, -0.07, 0.1][..]);
}

#[test]
fn crlf_bom_and_no_final_newline() {
    let expected = parse("a,b\n1,2\n3,4\n");
    for text in [
        "a,b\r\n1,2\r\n3,4\r\n",
        "a,b\r\n1,2\r\n3,4",
        "a,b\n1,2\n3,4",
        "\u{feff}a,b\n1,2\n3,4\n",
        "\u{feff}a,b\r\n1,2\r\n3,4",
        "a,b\n1,2\n3,4\n\n\n",
        "a,b\r\n1,2\r\n3,4\r\n\r\n  \r\n\t\n",
        "a,b\n1,2\n3,4\n   ",
    ] {
        assert_eq!(parse(text), expected, "{text:?}");
    }
}

#[test]
fn quoted_fields_and_whitespace() {
    let t = parse(" \"first, name\" ,\"say \"\"hi\"\"\",  plain  \n \"1\" , \" 2.5 \",3\n4,\"-0.0\",  6  \n");
    assert_eq!(t.columns, ["first, name", "say \"hi\"", "plain"]);
    assert_eq!(t.column("first, name").unwrap(), &[1.0, 4.0][..]);
    assert_eq!(t.column("say \"hi\"").unwrap(), &[2.5, -0.0][..]);
    assert_eq!(t.column("plain").unwrap(), &[3.0, 6.0][..]);
}

#[test]
fn single_column() {
    let t = parse("only\n1\n2\n");
    assert_eq!(t.rows, 2);
    assert_eq!(t.column("only").unwrap(), &[1.0, 2.0][..]);
}

#[test]
fn reads_a_file() {
    let f = TempFile::new("ok", b"\xef\xbb\xbfa,b\r\n1,2\r\n");
    let t = read_csv(&f.0).unwrap();
    assert_eq!(t.columns, ["a", "b"]);
    assert_eq!(t.get(0, 1), 2.0);
    assert_eq!(t.name(), f.0.display().to_string());
}

/// Only the selected columns are parsed: the others may hold anything and read as NaN; a record
/// must still have a field for every column, and selected columns keep their errors.
#[test]
fn unselected_columns_are_not_parsed() {
    let text = "x,species,y,note\n1,setosa,2,\n3,\"NA\",4,n/a\n";
    let only = |keep: &'static [&'static str]| {
        move |h: &[String]| h.iter().map(|c| keep.contains(&c.as_str())).collect::<Vec<bool>>()
    };
    let t = parse_csv_columns("d.csv", text, &only(&["x", "y"])).unwrap();
    assert_eq!(t.columns, ["x", "species", "y", "note"]);
    assert_eq!((t.column("x").unwrap(), t.column("y").unwrap()), (&[1.0, 3.0][..], &[2.0, 4.0][..]));
    assert!(t.column("species").unwrap().iter().all(|v| v.is_nan()));
    assert!(parse_csv("d.csv", text).is_err(), "every column parsed: `setosa` is an error");
    let e = parse_csv_columns("d.csv", text, &only(&["x", "species"])).unwrap_err().to_string();
    assert_eq!(e, "d.csv:2:2 (column \"species\"): cannot read \"setosa\" as a number");
    let e = parse_csv_columns("d.csv", "x,s\n1,a\n2\n", &only(&["x"])).unwrap_err().to_string();
    assert!(e.starts_with("d.csv:3:"), "{e}");
}

#[test]
fn reads_digits() {
    let dir = data_dir();
    let start = std::time::Instant::now();
    let t = read_csv(&dir.join("digits.csv")).unwrap();
    eprintln!("digits.csv read in {:?}", start.elapsed());
    assert_eq!(t.rows, 1797);
    assert_eq!(t.columns.len(), 65);
    assert_eq!(t.columns[0], "pixel_0_0");
    assert_eq!(t.columns[63], "pixel_7_7");
    assert_eq!(t.columns[64], "label");
    // First row: 0.0,0.0,5.0,13.0,...,0 ; second: ...,12.0 at pixel_0_3, label 1; last: pixel_0_2 10.0, label 8.
    assert_eq!(t.get(0, 2), 5.0);
    assert_eq!(t.get(0, 3), 13.0);
    assert_eq!(t.column("label").unwrap()[0], 0.0);
    assert_eq!(t.column("pixel_0_3").unwrap()[1], 12.0);
    assert_eq!(t.column("label").unwrap()[1], 1.0);
    assert_eq!(t.get(1796, 2), 10.0);
    assert_eq!(t.get(1796, 64), 8.0);
    assert_eq!(t.get(100, t.column_index("pixel_3_4").unwrap()), 1.0);
    assert_eq!(t.column("label").unwrap().iter().sum::<f64>(), 8070.0);
    assert_eq!(t.data()[..64 * 1797].iter().sum::<f64>(), 561718.0);
    let pixels = t.columns_range("pixel_0_0", "pixel_7_7").unwrap();
    assert_eq!(pixels, (0..64).collect::<Vec<_>>());
}

#[test]
fn reads_the_other_scikit_learn_files() {
    let dir = data_dir();
    for (file, rows, cols, first, last) in [
        ("iris.csv", 150, 5, "sepal_length_cm", "label"),
        ("diabetes.csv", 442, 11, "age", "target"),
        ("breast_cancer.csv", 569, 31, "mean_radius", "label"),
    ] {
        let t = read_csv(&dir.join(file)).unwrap();
        assert_eq!((t.rows, t.columns.len()), (rows, cols), "{file}");
        assert_eq!((t.columns[0].as_str(), t.columns[cols - 1].as_str()), (first, last), "{file}");
    }
    let iris = read_csv(&dir.join("iris.csv")).unwrap();
    assert_eq!(iris.get(0, 0), 5.1);
    assert_eq!(iris.get(149, 4), 2.0);
    let diabetes = read_csv(&dir.join("diabetes.csv")).unwrap();
    assert_eq!(diabetes.get(0, 0), 0.038075906433423026);
    assert_eq!(diabetes.column("target").unwrap()[0], 151.0);
}

// ---- errors ----

#[test]
fn not_a_number() {
    let mut text = String::from("age,sex,bmi\n");
    for _ in 2..17 {
        text.push_str("1,2,3\n");
    }
    text.push_str("1,2,abc\n4,5,6\n");
    assert_eq!(err(&text), r#"data.csv:17:3 (column "bmi"): cannot read "abc" as a number"#);
    assert_eq!(err("x,y\n1,\"a\"\"b\"\n"), r#"data.csv:2:2 (column "y"): cannot read "a\"b" as a number"#);
    assert_eq!(err("x\n0x10\n"), r#"data.csv:2:1 (column "x"): cannot read "0x10" as a number"#);
    assert_eq!(err("x\n1 000\n"), r#"data.csv:2:1 (column "x"): cannot read "1 000" as a number"#);
    assert_eq!(
        err("x\nthe quick brown fox jumps over the lazy dog again\n"),
        r#"data.csv:2:1 (column "x"): cannot read "the quick brown fox jumps over the lazy …" as a number"#
    );
    assert_eq!(
        err("x;y\n1;2\n"),
        r#"data.csv:2:1 (column "x;y"): cannot read "1;2" as a number (fields must be separated by ',', not ';')"#
    );
}

#[test]
fn empty_field() {
    assert_eq!(err("x,y\n1,2\n3,\n"), r#"data.csv:3:2 (column "y"): empty field"#);
    assert_eq!(err("x,y\n ,2\n"), r#"data.csv:2:1 (column "x"): empty field"#);
    assert_eq!(err("x,y\n1,\"\"\n"), r#"data.csv:2:2 (column "y"): empty field"#);
}

#[test]
fn not_finite() {
    let text = "w,x\n1,2\n1,2\n1,2\n1,2\n1,2\n1,2\n1,2\n1,inf\n";
    assert_eq!(err(text), r#"data.csv:9:2 (column "x"): value is not finite (inf)"#);
    assert_eq!(err("x\nNaN\n"), r#"data.csv:2:1 (column "x"): value is not finite (NaN)"#);
    assert_eq!(err("x\n-Infinity\n"), r#"data.csv:2:1 (column "x"): value is not finite (-Infinity)"#);
    assert_eq!(
        err("x\n1e400\n"),
        r#"data.csv:2:1 (column "x"): value is not finite (1e400 is beyond the range of f64)"#
    );
}

#[test]
fn ragged_rows() {
    let header = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target\n";
    let row = "1,2,3,4,5,6,7,8,9,10,11\n";
    let text = format!("{header}{row}{row}{row}1,2,3,4,5,6,7,8,9,10\n{row}");
    assert_eq!(err(&text), "data.csv:5: expected 11 fields as in the header, found 10");
    assert_eq!(err("a,b\n1,2,3\n"), "data.csv:2: expected 2 fields as in the header, found 3");
    // A trailing comma is one more (empty) field.
    assert_eq!(err("a,b\n1,2,\n"), "data.csv:2: expected 2 fields as in the header, found 3");
    // The field count is checked before the values.
    assert_eq!(err("a,b,c\nx,y\n"), "data.csv:2: expected 3 fields as in the header, found 2");
}

#[test]
fn no_data_rows() {
    assert_eq!(err("a,b\n"), "data.csv: no data rows");
    assert_eq!(err("a,b"), "data.csv: no data rows");
    assert_eq!(err("a,b\r\n\r\n\n  \n"), "data.csv: no data rows");
    assert_eq!(err(""), "data.csv: no data rows (the file is empty)");
    assert_eq!(err("\u{feff}"), "data.csv: no data rows (the file is empty)");
    assert_eq!(err("\n\n \r\n"), "data.csv: no data rows (the file is empty)");
}

#[test]
fn blank_lines_before_the_end() {
    assert_eq!(
        err("a,b\n1,2\n\n3,4\n"),
        "data.csv:3: blank line between records (only blank lines at the end of the file are ignored)"
    );
    assert_eq!(err("\na,b\n1,2\n"), "data.csv:1: the header line is blank");
}

#[test]
fn bad_header() {
    assert_eq!(err("a,b,a\n1,2,3\n"), r#"data.csv:1:3: duplicate column name "a" (also column 1)"#);
    assert_eq!(err("a, b ,\"b\"\n1,2,3\n"), r#"data.csv:1:3: duplicate column name "b" (also column 2)"#);
    assert_eq!(err("a,,c\n1,2,3\n"), "data.csv:1:2: empty column name in the header");
    assert_eq!(err("a,b,\n1,2,3\n"), "data.csv:1:3: empty column name in the header");
    assert_eq!(err("a,\"  \"\n1,2\n"), "data.csv:1:2: empty column name in the header");
}

#[test]
fn quote_errors() {
    assert_eq!(err("a,\"b\n1,2\n"), "data.csv:1:2: unterminated quoted field (no closing quote on this line)");
    assert_eq!(
        err("a,b\n1,2\n3,\"4\n"),
        r#"data.csv:3:2 (column "b"): unterminated quoted field (no closing quote on this line)"#
    );
    assert_eq!(
        err("a,b\n1,\"2\"\"\n"),
        r#"data.csv:2:2 (column "b"): unterminated quoted field (no closing quote on this line)"#
    );
    assert_eq!(err("a,b\n\"1\"x,2\n"), r#"data.csv:2:1 (column "a"): unexpected text after the closing quote"#);
    assert_eq!(err("\"a\" b,c\n1,2\n"), "data.csv:1:1: unexpected text after the closing quote");
}

#[test]
fn lone_carriage_returns() {
    assert_eq!(err("a,b\r1,2\r3,4\r"), r"data.csv:1: carriage return (\r) inside a line: lines must end in \n or \r\n");
    assert_eq!(
        err("a,b\n1,2\r\n3,\r4\n"),
        r"data.csv:3: carriage return (\r) inside a line: lines must end in \n or \r\n"
    );
}

#[test]
fn io_errors_name_the_path() {
    let path = std::env::temp_dir().join("circ-csv-test-this-file-does-not-exist.csv");
    let e = read_csv(&path).unwrap_err();
    assert!(matches!(e.kind, CsvErrorKind::Io(_)));
    let msg = e.to_string();
    let prefix = format!("cannot read {}: ", path.display());
    assert!(msg.starts_with(&prefix), "{msg}");
    assert!(msg.len() > prefix.len(), "{msg}");
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn not_utf8() {
    let f = TempFile::new("latin1", b"a,b\n1,2\n3,\xe94\n");
    let e = read_csv(&f.0).unwrap_err();
    assert_eq!(e.to_string(), format!("{}:3: the file is not valid UTF-8 text", f.0.display()));
}

#[test]
fn errors_in_files_name_the_path() {
    let f = TempFile::new("bad", b"x,y\n1,zz\n");
    let e = read_csv(&f.0).unwrap_err();
    assert_eq!(e.to_string(), format!(r#"{}:2:2 (column "y"): cannot read "zz" as a number"#, f.0.display()));
    assert_eq!((e.line, e.field, e.column.as_deref()), (Some(2), Some(2), Some("y")));
    assert!(matches!(e.kind, CsvErrorKind::NotANumber { ref text } if text == "zz"));
}

// ---- selecting columns ----

fn diabetes_like() -> Table {
    parse("age,sex,bmi,bp,s1,s2,target\n1,2,3,4,5,6,7\n")
}

#[test]
fn columns_range() {
    let t = diabetes_like();
    assert_eq!(t.columns_range("age", "s2").unwrap(), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(t.columns_range("bmi", "bmi").unwrap(), vec![2]);
    assert_eq!(
        t.columns_range("s2", "sex").unwrap_err(),
        r#"column range "s2" .. "sex" is backwards: "sex" is column 2 and "s2" is column 6 of data.csv"#
    );
    assert_eq!(t.columns_range("agee", "s2").unwrap_err(), r#"no column "agee" (did you mean "age"?) in data.csv"#);
    assert_eq!(
        t.columns_range("Age", "s9").unwrap_err(),
        r#"no columns "Age" (did you mean "age"?), "s9" (did you mean "s1"?) in data.csv"#
    );
    assert_eq!(
        t.columns_range("zzz", "zzz").unwrap_err(),
        r#"no column "zzz" in data.csv; its columns are "age", "sex", "bmi", "bp", "s1", "s2", "target""#
    );
}

#[test]
fn select() {
    let t = diabetes_like();
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(t.select(&names(&["target", "age", "age"])).unwrap(), vec![6, 0, 0]);
    assert_eq!(t.select(&[]).unwrap(), Vec::<usize>::new());
    assert_eq!(
        t.select(&names(&["age", "bmx", "tagret", "wibble", "bmx"])).unwrap_err(),
        r#"no columns "bmx" (did you mean "bmi"?), "tagret" (did you mean "target"?), "wibble" in data.csv"#
    );
    assert_eq!(
        t.select(&names(&["lable"])).unwrap_err(),
        r#"no column "lable" in data.csv; its columns are "age", "sex", "bmi", "bp", "s1", "s2", "target""#
    );
    let wide = parse(&format!(
        "{}\n{}\n",
        (0..20).map(|i| format!("x{i}")).collect::<Vec<_>>().join(","),
        vec!["0"; 20].join(",")
    ));
    assert_eq!(
        wide.select(&names(&["label"])).unwrap_err(),
        r#"no column "label" in data.csv; its 20 columns run from "x0" to "x19""#
    );
    assert_eq!(wide.select(&names(&["x190"])).unwrap_err(), r#"no column "x190" (did you mean "x19"?) in data.csv"#);
}

#[test]
#[should_panic(expected = "(1, 0) is out of range: data.csv has 1 rows and 7 columns")]
fn get_out_of_range_panics() {
    diabetes_like().get(1, 0);
}

/// Edges of the tokenizer (csv-core fed one line at a time): a trailing comma or whitespace after
/// it is one more empty field, a second byte-order mark is text, a quoted field preceded by
/// whitespace keeps its commas, and a quote inside an unquoted field is text.
#[test]
fn tokenizer_edges() {
    assert_eq!(err("a,b\n1,  \n"), r#"data.csv:2:2 (column "b"): empty field"#);
    assert_eq!(err("a,b\n1,2,  \n3,4\n"), "data.csv:2: expected 2 fields as in the header, found 3");
    assert_eq!(parse("\u{feff}\u{feff}a\n1\n").columns, ["\u{feff}a"]);
    let t = parse("x, \"a,b\"\n1,  \"2\"  \n");
    assert_eq!((t.columns.as_slice(), t.get(0, 1)), (&["x".to_string(), "a,b".to_string()][..], 2.0));
    assert_eq!(err("x\n1\"2\n"), r#"data.csv:2:1 (column "x"): cannot read "1\"2" as a number"#);
    assert_eq!(
        err("x,y\n\"1,2\n"),
        r#"data.csv:2:1 (column "x"): unterminated quoted field (no closing quote on this line)"#
    );
}
