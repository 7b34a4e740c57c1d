"""Independent check of an MCAP written by vidlog-mcap, with Foxglove's Python libraries.

Usage: python3 check_mcap.py FILE.mcap   (needs: pip install mcap mcap-protobuf-support protobuf)

Reads the file with `mcap`, decodes every foxglove.CompressedVideo message through the embedded
FileDescriptorSet with `mcap_protobuf` (Google's protobuf runtime builds the message class from
our descriptor bytes), and checks the fields. Exits non-zero with a message on any mismatch.
"""

import sys

from google.protobuf import descriptor_pb2
from mcap.reader import make_reader
from mcap_protobuf.decoder import DecoderFactory


def main(path: str) -> None:
    with open(path, "rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert summary is not None, "no summary section"
        for schema in summary.schemas.values():
            assert schema.name == "foxglove.CompressedVideo", schema.name
            assert schema.encoding == "protobuf", schema.encoding
            fds = descriptor_pb2.FileDescriptorSet.FromString(schema.data)
            names = sorted(f.name for f in fds.file)
            assert names == ["foxglove/CompressedVideo.proto", "google/protobuf/timestamp.proto"], names
        count = 0
        for _schema, channel, message, decoded in reader.iter_decoded_messages():
            assert channel.topic.startswith("/"), channel.topic
            assert channel.message_encoding == "protobuf"
            assert decoded.DESCRIPTOR.full_name == "foxglove.CompressedVideo"
            assert decoded.format in ("h264", "h265", "av1", "vp9"), decoded.format
            assert len(decoded.data) > 0
            pts = decoded.timestamp.seconds * 1_000_000_000 + decoded.timestamp.nanos
            assert pts >= 0
            assert message.log_time >= 0
            count += 1
        assert count > 0, "no messages"
    print(f"ok: {count} messages decoded by the Python protobuf runtime")


if __name__ == "__main__":
    main(sys.argv[1])
