"""Reads TensorBoard event files with an independent decoder (Google's protobuf, Debian's python3-protobuf; the
Event/Summary messages declared at run time from descriptors, no TensorFlow), checking every record's length and
both masked CRC32Cs, the file_version record, and that protobuf re-encodes each record to the bytes written.

    python3 tools/tb_events.py FILE...     prints one JSON line per scalar: {"tag", "step", "value", "wall_time"}
    import tb_events; tb_events.read(path) -> [Event, ...] (the first is the file_version record)
"""
import json, struct, sys
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def crc32c(data):  # bitwise Castagnoli CRC (reflected 0x82F63B78): slow, plain, independent of the C++ table
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def _event_class():
    # tensorflow/core/util/event.proto and framework/summary.proto: the fields a scalar log uses.
    F = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name="mae_event.proto", package="tensorboard", syntax="proto3")
    ev = fd.message_type.add(name="Event")
    ev.field.add(name="wall_time", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    ev.field.add(name="step", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    ev.field.add(name="file_version", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    ev.field.add(name="summary", number=5, type=F.TYPE_MESSAGE, type_name=".tensorboard.Summary",
                 label=F.LABEL_OPTIONAL)
    su = fd.message_type.add(name="Summary")
    su.field.add(name="value", number=1, type=F.TYPE_MESSAGE, type_name=".tensorboard.Summary.Value",
                 label=F.LABEL_REPEATED)
    va = su.nested_type.add(name="Value")
    va.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    va.field.add(name="simple_value", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    desc = pool.FindMessageTypeByName("tensorboard.Event")
    return (message_factory.GetMessageClass(desc) if hasattr(message_factory, "GetMessageClass")
            else message_factory.MessageFactory(pool).GetPrototype(desc))


Event = _event_class()


def read(path):
    raw = open(path, "rb").read()
    events, i = [], 0
    while i < len(raw):
        assert len(raw) - i >= 12, f"{path}: truncated header at byte {i}"
        n, = struct.unpack_from("<Q", raw, i)
        assert struct.unpack_from("<I", raw, i + 8)[0] == masked(raw[i:i + 8]), f"{path}: length CRC at byte {i}"
        assert len(raw) - i - 12 >= n + 4, f"{path}: truncated record at byte {i}"
        data = raw[i + 12:i + 12 + n]
        assert struct.unpack_from("<I", raw, i + 12 + n)[0] == masked(data), f"{path}: data CRC at byte {i}"
        e = Event()
        e.ParseFromString(data)
        # Nothing protobuf does not know (unknown fields would vanish here), the same field order and widths.
        # proto3 drops zeros, so an event with step 0 or value 0 only compares field by field.
        if not events or (e.step != 0 and all(v.simple_value != 0 for v in e.summary.value)):
            assert e.SerializeToString() == data, f"{path}: record {len(events)}: protobuf re-encodes other bytes"
        events.append(e)
        i += 12 + n + 4
    assert events and events[0].file_version == "brain.Event:2" and not events[0].HasField("summary"), \
        f"{path}: no file_version record first"
    return events


if __name__ == "__main__":
    for p in sys.argv[1:]:
        for e in read(p)[1:]:
            for v in e.summary.value:
                print(json.dumps({"tag": v.tag, "step": e.step, "value": v.simple_value, "wall_time": e.wall_time}))
