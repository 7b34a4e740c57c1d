//! Archetypes: named bundles of components. `VideoStream` (encoded samples on a
//! timeline), `AssetVideo` + `VideoFrameReference` (a whole video file and the frame to
//! show); `Image` and `EncodedImage` follow.

mod asset_video;
mod video_stream;

pub use asset_video::{AssetVideo, VideoFrameReference};
pub use video_stream::VideoStream;
