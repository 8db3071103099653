//! Score models: the first-order score network, second-order heads and third-order heads (CP or directional); energy
//! models; U-Net image score models.

mod cp_third_order_head;
mod energy_model;
mod image_maps;
mod image_score_model;
mod model;
mod model_kind;
mod noise_schedule;
mod score_model;
mod second_order_head;
mod third_order_head;
mod unet_settings;
mod unknown_head;

pub(crate) use cp_third_order_head::CpThirdOrderHead;
pub use energy_model::EnergyModel;
pub(crate) use energy_model::EnergyShape;
pub(crate) use image_score_model::DiagonalLink;
pub use image_score_model::{HeadLayout, ImageScoreModel};
pub use model::Model;
pub use model_kind::ModelKind;
pub use noise_schedule::NoiseSchedule;
pub(crate) use score_model::ModelShape;
pub use score_model::ScoreModel;
pub(crate) use score_model::SecondOrderNet;
pub use second_order_head::SecondOrderHead;
pub(crate) use third_order_head::ThirdOrderBuffers;
pub use third_order_head::ThirdOrderHead;
pub(crate) use third_order_head::ThirdOrderNet;
pub(crate) use unet_settings::image_shape;
pub use unet_settings::UNetSettings;
pub use unknown_head::UnknownHead;
