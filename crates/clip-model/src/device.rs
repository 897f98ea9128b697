//! Where a model runs, as the user names it (`cpu`, `cuda:1`), apart from candle's `Device` so
//! that callers need not depend on the tensor library.

use std::str::FromStr;

use candle_core::Device;

use crate::error::ModelError;

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceKind {
    /// The CPU (always available).
    #[default]
    Cpu,
    /// An NVIDIA GPU by ordinal (needs the `cuda` feature).
    Cuda(usize),
    /// An Apple GPU by ordinal (needs the `metal` feature).
    Metal(usize),
}

impl FromStr for DeviceKind {
    type Err = ModelError;

    /// Parses `cpu`, `cuda`, `cuda:N`, `metal`, `metal:N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ModelError::Device {
            device: s.to_string(),
            detail: "expected cpu, cuda, cuda:N, metal or metal:N".into(),
        };
        let (kind, index) = match s.split_once(':') {
            Some((k, i)) => (k, i.parse::<usize>().map_err(|_| bad())?),
            None => (s, 0),
        };
        match kind {
            "cpu" if !s.contains(':') => Ok(DeviceKind::Cpu),
            "cuda" => Ok(DeviceKind::Cuda(index)),
            "metal" => Ok(DeviceKind::Metal(index)),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceKind::Cpu => write!(f, "cpu"),
            DeviceKind::Cuda(i) => write!(f, "cuda:{i}"),
            DeviceKind::Metal(i) => write!(f, "metal:{i}"),
        }
    }
}

impl DeviceKind {
    /// The candle device, or why it is not available.
    pub(crate) fn device(self) -> Result<Device, ModelError> {
        let unavailable = |e: candle_core::Error| ModelError::Device {
            device: self.to_string(),
            detail: e.to_string(),
        };
        match self {
            DeviceKind::Cpu => Ok(Device::Cpu),
            DeviceKind::Cuda(i) => Device::new_cuda(i).map_err(unavailable),
            DeviceKind::Metal(i) => Device::new_metal(i).map_err(unavailable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse::<DeviceKind>().unwrap(), DeviceKind::Cpu);
        assert_eq!("cuda".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda(0));
        assert_eq!("cuda:2".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda(2));
        assert_eq!("metal".parse::<DeviceKind>().unwrap(), DeviceKind::Metal(0));
        assert!("gpu".parse::<DeviceKind>().is_err());
        assert!("cpu:1".parse::<DeviceKind>().is_err());
        assert!("cuda:x".parse::<DeviceKind>().is_err());
    }
}
