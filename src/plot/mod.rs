//! PNG figures drawn without system fonts: heatmap grids, scatter-over-density plots and log-y line plots.

mod axes;
mod canvas;
mod colormap;
mod error;
mod field;
mod font;
mod heatmap;
mod image_grid;
mod line;
mod scatter;
mod ticks;

pub use canvas::{Canvas, Rgb};
pub use colormap::Colormap;
pub use field::{grid_points, Field};
pub use heatmap::HeatmapFigure;
pub use image_grid::{image_grid, ImageShape};
pub use line::LinePlot;
pub use scatter::ScatterFigure;
