//! One checkpoint container for every rnnlab model, stored in the safetensors format.
//!
//! Layout of a file (the safetensors specification):
//!
//! ```text
//! [8 bytes: N, little-endian u64][N bytes: JSON header][raw little-endian tensor data]
//! header = { "<tensor>": {"dtype": "F64", "shape": [r, c], "data_offsets": [begin, end]}, ...,
//!            "__metadata__": {"<key>": "<string>", ...} }
//! ```
//!
//! `data_offsets` are relative to the first byte after the header and together cover the data
//! block exactly (no holes, no overlaps). Weights, optimizer moments and RNG state go in
//! tensors; the vocabulary, hyperparameters, step count and format version go in the string
//! metadata. rnnlab files carry `format = "rnnlab"`, `format_version = "1"` and a `kind`
//! (`"dinos"`, ...), so any safetensors reader (PyTorch, numpy) can open them, and rnnlab
//! refuses files that are not its own with a clear [`CoreError::BadFile`].
//!
//! The format is small enough to implement here (about the size of the glue code the
//! `safetensors` crate would need), which keeps the core free of another dependency and lets
//! every parse error say exactly what is wrong and in which file.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

use crate::error::{CoreError, Result};

/// `metadata["format"]` of every rnnlab checkpoint.
pub const FORMAT: &str = "rnnlab";
/// The container version this build writes (and the newest it reads).
pub const FORMAT_VERSION: u32 = 1;
/// Largest JSON header accepted (the `safetensors` crate uses the same bound).
const MAX_HEADER_LEN: u64 = 100_000_000;
/// The reserved header key holding the string metadata.
const METADATA_KEY: &str = "__metadata__";
/// Metadata key of the data checksum written by [`Checkpoint::to_bytes`].
const CHECKSUM_KEY: &str = "data_fnv1a64";

/// Element type of a stored tensor (the safetensors dtype names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    F64,
    F32,
    U32,
    I64,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::U32 => 4,
        }
    }

    /// The safetensors name (`"F64"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F64 => "F64",
            Dtype::F32 => "F32",
            Dtype::U32 => "U32",
            Dtype::I64 => "I64",
        }
    }

    fn parse(name: &str) -> Option<Dtype> {
        match name {
            "F64" => Some(Dtype::F64),
            "F32" => Some(Dtype::F32),
            "U32" => Some(Dtype::U32),
            "I64" => Some(Dtype::I64),
            _ => None,
        }
    }
}

/// One stored tensor: dtype, shape (C order) and its raw little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl Tensor {
    /// Number of elements (product of the shape; 1 for a scalar of shape `[]`).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A checkpoint: named tensors plus string metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    pub tensors: BTreeMap<String, Tensor>,
    pub metadata: BTreeMap<String, String>,
}

/// `(shape, values)` as returned by the typed getters.
pub type Shaped<T> = (Vec<usize>, Vec<T>);

macro_rules! typed_accessors {
    ($put:ident, $get:ident, $t:ty, $dtype:expr) => {
        #[doc = concat!("Store `data` (C order) as a `", stringify!($t), "` tensor of the given shape.")]
        pub fn $put(&mut self, name: &str, shape: &[usize], data: &[$t]) -> Result<()> {
            let mut bytes = Vec::with_capacity(data.len() * std::mem::size_of::<$t>());
            for v in data {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            self.put_tensor(name, $dtype, shape, bytes)
        }

        #[doc = concat!("Read a `", stringify!($t), "` tensor: its shape and values (C order).")]
        pub fn $get(&self, name: &str) -> Result<Shaped<$t>> {
            const SIZE: usize = std::mem::size_of::<$t>();
            let t = self.tensor_of(name, $dtype)?;
            let values = t
                .data
                .chunks_exact(SIZE)
                .map(|c| {
                    let mut b = [0u8; SIZE];
                    b.copy_from_slice(c);
                    <$t>::from_le_bytes(b)
                })
                .collect();
            Ok((t.shape.clone(), values))
        }
    };
}

impl Checkpoint {
    /// An empty rnnlab checkpoint of the given kind (`format`, `format_version`, `kind` set).
    pub fn new(kind: &str) -> Self {
        let mut c = Checkpoint::default();
        c.set_meta("format", FORMAT);
        c.set_meta("format_version", &FORMAT_VERSION.to_string());
        c.set_meta("kind", kind);
        c
    }

    /// `metadata["kind"]`, if present.
    pub fn kind(&self) -> Option<&str> {
        self.metadata.get("kind").map(String::as_str)
    }

    /// Error unless this checkpoint is of the given kind.
    pub fn expect_kind(&self, kind: &str) -> Result<()> {
        match self.kind() {
            Some(k) if k == kind => Ok(()),
            Some(k) => Err(CoreError::BadFile(format!(
                "checkpoint kind: expected \"{kind}\", got \"{k}\""
            ))),
            None => Err(CoreError::BadFile(format!(
                "checkpoint kind: expected \"{kind}\", but metadata has no \"kind\""
            ))),
        }
    }

    /// Set a metadata entry.
    pub fn set_meta(&mut self, key: &str, value: &str) {
        self.metadata.insert(key.to_string(), value.to_string());
    }

    /// A metadata entry, or a `BadFile` error naming the missing key.
    pub fn meta(&self, key: &str) -> Result<&str> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| CoreError::BadFile(format!("checkpoint metadata: missing \"{key}\"")))
    }

    /// A metadata entry parsed with `FromStr` (numbers, booleans).
    pub fn meta_parse<T: std::str::FromStr>(&self, key: &str) -> Result<T> {
        let raw = self.meta(key)?;
        raw.parse().map_err(|_| {
            CoreError::BadFile(format!(
                "checkpoint metadata \"{key}\": cannot parse \"{raw}\" as {}",
                std::any::type_name::<T>()
            ))
        })
    }

    /// Store a tensor from raw little-endian bytes (checks that the size matches the shape).
    pub fn put_tensor(
        &mut self,
        name: &str,
        dtype: Dtype,
        shape: &[usize],
        data: Vec<u8>,
    ) -> Result<()> {
        if name.is_empty() || name == METADATA_KEY {
            return Err(CoreError::invalid(format!(
                "checkpoint tensor name: \"{name}\" is reserved or empty"
            )));
        }
        let numel = numel_checked(shape).ok_or_else(|| {
            CoreError::invalid(format!("tensor {name}: shape {shape:?} overflows"))
        })?;
        if numel * dtype.size() != data.len() {
            return Err(CoreError::ShapeMismatch {
                name: format!("tensor {name}"),
                expected: format!("{numel} elements for shape {shape:?}"),
                actual: format!("{} elements", data.len() / dtype.size()),
            });
        }
        self.tensors.insert(
            name.to_string(),
            Tensor {
                dtype,
                shape: shape.to_vec(),
                data,
            },
        );
        Ok(())
    }

    /// The named tensor, which must have the given dtype.
    pub fn tensor_of(&self, name: &str, dtype: Dtype) -> Result<&Tensor> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| CoreError::BadFile(format!("checkpoint: missing tensor \"{name}\"")))?;
        if t.dtype != dtype {
            return Err(CoreError::BadFile(format!(
                "checkpoint tensor \"{name}\": expected dtype {}, got {}",
                dtype.name(),
                t.dtype.name()
            )));
        }
        Ok(t)
    }

    typed_accessors!(put_f64, get_f64, f64, Dtype::F64);
    typed_accessors!(put_f32, get_f32, f32, Dtype::F32);
    typed_accessors!(put_u32, get_u32, u32, Dtype::U32);
    typed_accessors!(put_i64, get_i64, i64, Dtype::I64);

    /// An `F64` tensor that must have exactly the given shape.
    pub fn get_f64_shaped(&self, name: &str, shape: &[usize]) -> Result<Vec<f64>> {
        let (actual, values) = self.get_f64(name)?;
        if actual != shape {
            return Err(CoreError::BadFile(format!(
                "checkpoint tensor \"{name}\": expected shape {shape:?}, got {actual:?}"
            )));
        }
        Ok(values)
    }

    /// Serialise to safetensors bytes. Tensors are laid out by decreasing element size, then
    /// by name, and the header is padded with spaces to a multiple of 8 bytes, so every
    /// tensor starts 8-byte aligned relative to the file.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut order: Vec<(&String, &Tensor)> = self.tensors.iter().collect();
        order.sort_by(|a, b| b.1.dtype.size().cmp(&a.1.dtype.size()).then(a.0.cmp(b.0)));

        let mut header = Map::new();
        let mut offset = 0usize;
        for (name, t) in &order {
            let mut entry = Map::new();
            entry.insert("dtype".into(), Value::from(t.dtype.name()));
            entry.insert("shape".into(), Value::from(t.shape.clone()));
            entry.insert(
                "data_offsets".into(),
                Value::from(vec![offset, offset + t.data.len()]),
            );
            header.insert((*name).clone(), Value::Object(entry));
            offset += t.data.len();
        }
        if !self.metadata.is_empty() {
            let mut meta: Map<String, Value> = self
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            if self.metadata.get("format").map(String::as_str) == Some(FORMAT) {
                meta.insert(CHECKSUM_KEY.into(), Value::from(self.data_checksum()));
            }
            header.insert(METADATA_KEY.into(), Value::Object(meta));
        }
        let mut json = serde_json::to_vec(&Value::Object(header)).map_err(|e| {
            CoreError::invalid(format!("checkpoint header: cannot serialise ({e})"))
        })?;
        while (8 + json.len()) % 8 != 0 {
            json.push(b' ');
        }

        let mut out = Vec::with_capacity(8 + json.len() + offset);
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(&json);
        for (_, t) in &order {
            out.extend_from_slice(&t.data);
        }
        Ok(out)
    }

    /// Parse any well-formed safetensors file (no rnnlab-specific checks), fully
    /// bounds-checked: never panics on bad input.
    pub fn parse_safetensors(bytes: &[u8]) -> Result<Self> {
        let bad = |msg: String| CoreError::BadFile(msg);
        if bytes.len() < 8 {
            return Err(bad(format!(
                "not a safetensors file: {} bytes, shorter than the 8-byte header length",
                bytes.len()
            )));
        }
        let mut len8 = [0u8; 8];
        len8.copy_from_slice(&bytes[..8]);
        let header_len = u64::from_le_bytes(len8);
        let available = (bytes.len() - 8) as u64;
        if header_len > MAX_HEADER_LEN || header_len > available {
            return Err(bad(format!(
                "not a safetensors file (or truncated): header length {header_len} but only {available} bytes follow"
            )));
        }
        let header_end = 8 + header_len as usize;
        let header_bytes = &bytes[8..header_end];
        if header_bytes.first() != Some(&b'{') {
            return Err(bad(
                "not a safetensors file: the header is not a JSON object".into(),
            ));
        }
        let header: Value = serde_json::from_slice(header_bytes)
            .map_err(|e| bad(format!("corrupt safetensors header: {e}")))?;
        let Value::Object(entries) = header else {
            return Err(bad("corrupt safetensors header: not a JSON object".into()));
        };
        let data = &bytes[header_end..];

        let mut ck = Checkpoint::default();
        let mut spans: Vec<(usize, usize, String)> = Vec::new();
        for (name, entry) in entries {
            if name == METADATA_KEY {
                let Value::Object(meta) = entry else {
                    return Err(bad(
                        "corrupt safetensors header: __metadata__ is not an object".into(),
                    ));
                };
                for (k, v) in meta {
                    let Value::String(s) = v else {
                        return Err(bad(format!(
                            "corrupt safetensors header: metadata \"{k}\" is not a string"
                        )));
                    };
                    ck.metadata.insert(k, s);
                }
                continue;
            }
            let (dtype, shape, begin, end) = parse_entry(&name, &entry)?;
            let numel = numel_checked(&shape)
                .ok_or_else(|| bad(format!("tensor \"{name}\": shape {shape:?} overflows")))?;
            let expected = numel.checked_mul(dtype.size());
            if end < begin || Some(end - begin) != expected {
                return Err(bad(format!(
                    "tensor \"{name}\": data_offsets [{begin}, {end}] do not match {} x {shape:?}",
                    dtype.name()
                )));
            }
            if end > data.len() {
                return Err(bad(format!(
                    "truncated file: tensor \"{name}\" ends at byte {end} of a {}-byte data block",
                    data.len()
                )));
            }
            spans.push((begin, end, name.clone()));
            ck.tensors.insert(
                name,
                Tensor {
                    dtype,
                    shape,
                    data: data[begin..end].to_vec(),
                },
            );
        }
        // The data block must be covered exactly: no overlaps, no holes, nothing trailing.
        spans.sort();
        let mut pos = 0usize;
        for (begin, end, name) in &spans {
            if *begin != pos {
                return Err(bad(format!(
                    "corrupt safetensors file: tensor \"{name}\" starts at {begin}, expected {pos}"
                )));
            }
            pos = *end;
        }
        if pos != data.len() {
            return Err(bad(format!(
                "corrupt safetensors file: tensors cover {pos} bytes of a {}-byte data block",
                data.len()
            )));
        }
        Ok(ck)
    }

    /// Parse an rnnlab checkpoint: a valid safetensors file whose metadata says
    /// `format = "rnnlab"` with a `format_version` this build can read.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let ck = Self::parse_safetensors(bytes)?;
        match ck.metadata.get("format").map(String::as_str) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(CoreError::BadFile(format!(
                    "not an rnnlab checkpoint: metadata format is \"{other}\""
                )))
            }
            None => {
                return Err(CoreError::BadFile(
                    "not an rnnlab checkpoint: safetensors file without metadata \"format\": \"rnnlab\"".into(),
                ))
            }
        }
        let version: u32 = ck.meta_parse("format_version")?;
        if version == 0 || version > FORMAT_VERSION {
            return Err(CoreError::BadFile(format!(
                "unsupported rnnlab checkpoint format_version {version} (this build reads 1..={FORMAT_VERSION})"
            )));
        }
        let mut ck = ck;
        if let Some(stored) = ck.metadata.remove(CHECKSUM_KEY) {
            let actual = ck.data_checksum();
            if stored != actual {
                return Err(CoreError::BadFile(format!(
                    "corrupt rnnlab checkpoint: tensor data checksum is {actual}, the header says {stored}"
                )));
            }
        }
        Ok(ck)
    }

    /// FNV-1a (64-bit) over every tensor's name and bytes in name order: catches flipped or
    /// overwritten bytes in the data block, which the safetensors layout alone cannot.
    fn data_checksum(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (name, t) in &self.tensors {
            for &b in name
                .as_bytes()
                .iter()
                .chain([0u8].iter())
                .chain(t.data.iter())
            {
                h ^= b as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        format!("{h:016x}")
    }

    /// Write atomically: a temporary file in the same directory, fsync, rename over `path`
    /// (then fsync the directory where the platform allows). A crash leaves either the old
    /// file or the new one, never a torn file.
    pub fn write_atomic(&self, path: impl AsRef<Path>) -> Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = path.as_ref();
        let io_err = |what: &str, e: std::io::Error| {
            CoreError::BadFile(format!(
                "cannot write checkpoint {}: {what}: {e}",
                path.display()
            ))
        };
        let file_name = path.file_name().ok_or_else(|| {
            CoreError::invalid(format!(
                "checkpoint path {}: not a file name",
                path.display()
            ))
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let bytes = self.to_bytes()?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}-{}",
            file_name.to_string_lossy(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut f = File::create(&tmp).map_err(|e| io_err("create temporary file", e))?;
            f.write_all(&bytes).map_err(|e| io_err("write", e))?;
            f.sync_all().map_err(|e| io_err("fsync", e))?;
            fs::rename(&tmp, path).map_err(|e| io_err("rename", e))
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
            return written;
        }
        #[cfg(unix)]
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all(); // make the rename durable; best effort
        }
        Ok(())
    }

    /// Read and parse an rnnlab checkpoint; every error names the file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| {
            CoreError::BadFile(format!("cannot read checkpoint {}: {e}", path.display()))
        })?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            CoreError::BadFile(msg) => CoreError::BadFile(format!("{}: {msg}", path.display())),
            other => other,
        })
    }
}

fn numel_checked(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// `(dtype, shape, begin, end)` of one header entry.
fn parse_entry(name: &str, entry: &Value) -> Result<(Dtype, Vec<usize>, usize, usize)> {
    let bad = |what: &str| {
        CoreError::BadFile(format!(
            "corrupt safetensors header: tensor \"{name}\": {what}"
        ))
    };
    let obj = entry
        .as_object()
        .ok_or_else(|| bad("entry is not an object"))?;
    let dtype_name = obj
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing dtype"))?;
    let dtype = Dtype::parse(dtype_name).ok_or_else(|| {
        CoreError::BadFile(format!(
            "tensor \"{name}\": unsupported dtype {dtype_name} (rnnlab reads F64, F32, U32, I64)"
        ))
    })?;
    let as_usize = |v: &Value| v.as_u64().and_then(|u| usize::try_from(u).ok());
    let shape = obj
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("missing shape"))?
        .iter()
        .map(|d| as_usize(d).ok_or_else(|| bad("shape holds a non-integer")))
        .collect::<Result<Vec<usize>>>()?;
    let offsets = obj
        .get("data_offsets")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("missing data_offsets"))?;
    if offsets.len() != 2 {
        return Err(bad("data_offsets must hold two integers"));
    }
    let begin = as_usize(&offsets[0]).ok_or_else(|| bad("data_offsets holds a non-integer"))?;
    let end = as_usize(&offsets[1]).ok_or_else(|| bad("data_offsets holds a non-integer"))?;
    Ok((dtype, shape, begin, end))
}
