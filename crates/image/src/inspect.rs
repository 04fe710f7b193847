//! Format inspection: the `virtual_size` of an image read from the first
//! bytes of its data as they stream in, as Glance's format inspector does.
//! Only headers at the start of the data are read (at most [`HEAD_LEN`]
//! bytes are kept), so inspection costs nothing noticeable and memory stays
//! constant. Inspection never fails an upload: data that does not look like
//! its `disk_format` simply has no virtual size.
//!
//! - qcow2: magic `QFI\xfb`, version 2 or 3, size = big-endian u64 at 24;
//! - vmdk (sparse extent, e.g. monolithicSparse, streamOptimized): magic
//!   `KDMV`, capacity in 512-byte sectors = little-endian u64 at 12;
//! - vdi: signature `0xbeda107f` (little-endian) at 0x40, size =
//!   little-endian u64 at 0x170;
//! - vhd (dynamic disks, which start with a copy of the footer): cookie
//!   `conectix`, current size = big-endian u64 at 48;
//! - raw and iso: the virtual size is the size;
//! - anything else (vhdx, ami, ...): unknown.

/// The most bytes of the head any format needs.
pub const HEAD_LEN: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Qcow2,
    Vmdk,
    Vdi,
    Vhd,
    /// raw, iso: virtual size = size.
    Plain,
    Unknown,
}

impl Format {
    fn of(disk_format: Option<&str>) -> Self {
        match disk_format {
            Some("qcow2") => Self::Qcow2,
            Some("vmdk") => Self::Vmdk,
            Some("vdi") => Self::Vdi,
            Some("vhd") => Self::Vhd,
            Some("raw" | "iso") => Self::Plain,
            _ => Self::Unknown,
        }
    }

    /// How many head bytes the header parse needs.
    fn head_len(self) -> usize {
        match self {
            Self::Qcow2 => 32,
            Self::Vmdk => 20,
            Self::Vdi => 0x178,
            Self::Vhd => 56,
            Self::Plain | Self::Unknown => 0,
        }
    }
}

/// Keeps the first bytes of a stream and tells its virtual size at the end.
#[derive(Clone, Debug)]
pub struct Inspector {
    format: Format,
    head: Vec<u8>,
}

impl Inspector {
    pub fn new(disk_format: Option<&str>) -> Self {
        let format = Format::of(disk_format);
        Self {
            format,
            head: Vec::with_capacity(format.head_len()),
        }
    }

    /// Looks at the next chunk of data (copies only what the header needs).
    pub fn feed(&mut self, chunk: &[u8]) {
        let want = self.format.head_len().saturating_sub(self.head.len());
        if want > 0 {
            self.head.extend_from_slice(&chunk[..want.min(chunk.len())]);
        }
    }

    /// The virtual size of data of `size` bytes, when the header gave one.
    pub fn virtual_size(&self, size: u64) -> Option<u64> {
        let h = &self.head;
        match self.format {
            Format::Plain => Some(size),
            Format::Unknown => None,
            Format::Qcow2 => {
                if h.get(0..4)? != b"QFI\xfb" {
                    return None;
                }
                let version = u32::from_be_bytes(h.get(4..8)?.try_into().ok()?);
                if !(2..=3).contains(&version) {
                    return None;
                }
                Some(u64::from_be_bytes(h.get(24..32)?.try_into().ok()?))
            }
            Format::Vmdk => {
                if h.get(0..4)? != b"KDMV" {
                    return None;
                }
                let sectors = u64::from_le_bytes(h.get(12..20)?.try_into().ok()?);
                sectors.checked_mul(512)
            }
            Format::Vdi => {
                let sig = u32::from_le_bytes(h.get(0x40..0x44)?.try_into().ok()?);
                if sig != 0xbeda_107f {
                    return None;
                }
                Some(u64::from_le_bytes(h.get(0x170..0x178)?.try_into().ok()?))
            }
            Format::Vhd => {
                if h.get(0..8)? != b"conectix" {
                    return None;
                }
                Some(u64::from_be_bytes(h.get(48..56)?.try_into().ok()?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(fmt: &str, data: &[u8], chunk: usize) -> Option<u64> {
        let mut i = Inspector::new(Some(fmt));
        for c in data.chunks(chunk.max(1)) {
            i.feed(c);
        }
        i.virtual_size(data.len() as u64)
    }

    fn qcow2_head(size: u64) -> Vec<u8> {
        let mut h = vec![0u8; 104];
        h[0..4].copy_from_slice(b"QFI\xfb");
        h[4..8].copy_from_slice(&3u32.to_be_bytes());
        h[24..32].copy_from_slice(&size.to_be_bytes());
        h
    }

    #[test]
    fn qcow2_header_in_any_chunking() {
        let data = qcow2_head(16 << 20);
        for chunk in [1, 3, 7, 31, 32, 33, 1000] {
            assert_eq!(inspect("qcow2", &data, chunk), Some(16 << 20), "{chunk}");
        }
    }

    #[test]
    fn bad_or_short_headers_give_nothing() {
        assert_eq!(inspect("qcow2", b"QFI\xfb", 4), None);
        assert_eq!(inspect("qcow2", &[0u8; 64], 64), None);
        let mut v1 = qcow2_head(1);
        v1[4..8].copy_from_slice(&1u32.to_be_bytes());
        assert_eq!(inspect("qcow2", &v1, 64), None);
        assert_eq!(inspect("qcow2", b"", 1), None);
        assert_eq!(inspect("vmdk", b"# Disk DescriptorFile\n", 8), None);
        assert_eq!(inspect("vhdx", b"vhdxfile", 8), None);
        assert_eq!(Inspector::new(None).virtual_size(5), None);
    }

    #[test]
    fn raw_and_iso_are_their_size() {
        assert_eq!(inspect("raw", &[1u8; 1000], 100), Some(1000));
        assert_eq!(inspect("iso", b"", 1), Some(0));
    }

    #[test]
    fn vmdk_vdi_vhd_headers() {
        let mut vmdk = vec![0u8; 512];
        vmdk[0..4].copy_from_slice(b"KDMV");
        vmdk[12..20].copy_from_slice(&2048u64.to_le_bytes());
        assert_eq!(inspect("vmdk", &vmdk, 5), Some(2048 * 512));

        let mut vdi = vec![0u8; 512];
        vdi[0x40..0x44].copy_from_slice(&0xbeda_107fu32.to_le_bytes());
        vdi[0x170..0x178].copy_from_slice(&(1u64 << 30).to_le_bytes());
        assert_eq!(inspect("vdi", &vdi, 100), Some(1 << 30));

        let mut vhd = vec![0u8; 512];
        vhd[0..8].copy_from_slice(b"conectix");
        vhd[48..56].copy_from_slice(&(8u64 << 20).to_be_bytes());
        assert_eq!(inspect("vhd", &vhd, 9), Some(8 << 20));
    }
}
