//! Writes a checkpoint folder of a named architecture with random weights (`config.json`,
//! `preprocessor_config.json`, `model.safetensors` in f32), the size of the real one, for
//! measuring loading time and memory without a download (`docs/speed.md`):
//!
//! ```sh
//! cargo run --release -p clip-model --example random_checkpoint -- ViT-B/32 /tmp/vit-b32
//! ```
//!
//! The outputs of such a model mean nothing. Keep the folder out of the repository (ViT-B/32
//! is 605 MB).

use std::path::PathBuf;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clip_model::arch::{architecture, architecture_json, ARCHITECTURES};
use clip_model::ClipModel;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [arch, dir] = args.as_slice() else {
        return Err(format!(
            "usage: random_checkpoint ARCH FOLDER (ARCH one of {})",
            ARCHITECTURES.join(", ")
        )
        .into());
    };
    let dir = PathBuf::from(dir);
    let config = architecture(arch)?;
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
    ClipModel::new(vb, &config)?;
    std::fs::create_dir_all(&dir)?;
    vars.save(dir.join("model.safetensors"))?;
    let json = serde_json::to_string_pretty(&architecture_json(arch)?)?;
    std::fs::write(dir.join("config.json"), json)?;
    let size = config.vision_config.image_size;
    let preprocess = serde_json::json!({
        "crop_size": {"height": size, "width": size},
        "do_center_crop": true, "do_convert_rgb": true, "do_normalize": true,
        "do_rescale": true, "do_resize": true,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "image_processor_type": "CLIPImageProcessor",
        "resample": 3, "rescale_factor": 0.00392156862745098,
        "size": {"shortest_edge": size}
    });
    std::fs::write(
        dir.join("preprocessor_config.json"),
        serde_json::to_string_pretty(&preprocess)?,
    )?;
    println!("{arch} with random weights in {}", dir.display());
    Ok(())
}
