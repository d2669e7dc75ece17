// gguf_dump.mjs - a second GGUF reader's view of a file (the npm package @huggingface/gguf):
// every key with its GGUF value type (arrays: item type and count, first and last item),
// every tensor's shape (ggml order), type and offset. test_gguf compares lathe's reader with
// the JSON this prints for the same deterministic export (see gen_ref.sh).
// usage: node gguf_dump.mjs FILE.gguf > ref.json   (with @huggingface/gguf installed)
import { gguf } from "@huggingface/gguf";

const { typedMetadata, tensorInfos, tensorDataOffset } = await gguf(process.argv[2], {
  allowLocalFile: true,
  typedMetadata: true,
});
const num = (v) => (typeof v === "bigint" ? Number(v) : v);
const out = { tensor_data_offset: num(tensorDataOffset), metadata: {}, tensors: [] };
for (const [k, v] of Object.entries(typedMetadata)) {
  if (k === "version" || k === "tensor_count" || k === "kv_count") continue;
  const e = { type: v.type };
  if (Array.isArray(v.value)) {
    e.sub_type = v.subType;
    e.count = v.value.length;
    e.first = num(v.value[0]);
    e.last = num(v.value[v.value.length - 1]);
  } else if (typeof v.value !== "string" || v.value.length <= 200) {
    e.value = num(v.value);
  } else {
    e.length = v.value.length;
  }
  out.metadata[k] = e;
}
for (const t of tensorInfos)
  out.tensors.push({ name: t.name, ne: t.shape.map(num), type: t.dtype, offset: num(t.offset) });
console.log(JSON.stringify(out, null, 0).replace(/},/g, "},\n"));
