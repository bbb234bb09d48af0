//! The per-record-kind methods the store had before the typed tables, kept
//! as one-line wrappers over the generic operations so callers compile
//! unchanged while they move to `get::<T>` / `put::<T>` (issue 17). Holds
//! no logic of its own and must never gain any: delete it once no caller
//! is left.

use cairn_dedup::ChunkId;

use crate::error::EngineResult;
use crate::meta::{
    Buckets, Chunks, KeyRange, Manifests, MetaBatch, MetaGuard, MetaStore, Objects, Parts, System,
    Table, UploadId, Uploads,
};
use crate::records::{
    BucketRecord, ChunkRecord, ChunkRefDelta, ManifestBlock, ObjectVersion, PartRecord,
    UploadRecord, VersionId,
};

#[cfg(test)]
pub fn object_key(bucket_id: u64, key: &str) -> Vec<u8> {
    Objects::key((bucket_id, key))
}

impl MetaStore {
    pub fn bucket(&self, name: &str) -> EngineResult<Option<BucketRecord>> {
        self.get::<Buckets>(name)
    }

    /// A bucket record and a guard that it is still exactly this record (a
    /// bucket deleted and created again has a new id, so a new record).
    pub fn bucket_guarded(&self, name: &str) -> EngineResult<(Option<BucketRecord>, MetaGuard)> {
        self.get_guarded::<Buckets>(name)
    }

    pub fn buckets(&self) -> EngineResult<Vec<(String, BucketRecord)>> {
        self.page::<Buckets>(KeyRange::all(), usize::MAX)
    }

    /// A chunk record and a guard that it is still exactly this record.
    pub fn chunk_guarded(&self, id: &ChunkId) -> EngineResult<(Option<ChunkRecord>, MetaGuard)> {
        self.get_guarded::<Chunks>(id)
    }

    pub fn chunk(&self, id: &ChunkId) -> EngineResult<Option<ChunkRecord>> {
        self.get::<Chunks>(id)
    }

    /// An upload record and a guard that it is still exactly this record.
    pub fn upload_guarded(&self, id: UploadId) -> EngineResult<(Option<UploadRecord>, MetaGuard)> {
        self.get_guarded::<Uploads>(id)
    }

    /// A part record and a guard that it is still exactly this record.
    pub fn part_guarded(
        &self,
        upload: UploadId,
        part_number: u32,
    ) -> EngineResult<(Option<PartRecord>, MetaGuard)> {
        self.get_guarded::<Parts>((upload, part_number))
    }

    pub fn upload(&self, id: UploadId) -> EngineResult<Option<UploadRecord>> {
        self.get::<Uploads>(id)
    }

    pub fn part(&self, upload: UploadId, part_number: u32) -> EngineResult<Option<PartRecord>> {
        self.get::<Parts>((upload, part_number))
    }

    /// Parts of an upload with part number > `after`, at most `limit`, in order.
    pub fn parts(
        &self,
        upload: UploadId,
        after: u32,
        limit: usize,
    ) -> EngineResult<Vec<(u32, PartRecord)>> {
        Ok(self
            .parts_guarded(upload, after, limit)?
            .into_iter()
            .map(|(n, rec, _)| (n, rec))
            .collect())
    }

    /// Multipart uploads in id order after `after`, at most `limit`.
    pub fn uploads_page(
        &self,
        after: Option<UploadId>,
        limit: usize,
    ) -> EngineResult<Vec<(UploadId, UploadRecord)>> {
        let after = after.map(Uploads::key);
        self.page::<Uploads>(KeyRange::after(after.as_ref().map(|a| &a[..])), limit)
    }

    /// Calls `f` with every object version (any bucket), in key order.
    pub fn for_each_object(
        &self,
        f: impl FnMut(ObjectVersion) -> EngineResult<()>,
    ) -> EngineResult<()> {
        self.for_each::<Objects>(f)
    }

    /// Calls `f` with every stored multipart part.
    pub fn for_each_part(&self, f: impl FnMut(PartRecord) -> EngineResult<()>) -> EngineResult<()> {
        self.for_each::<Parts>(f)
    }

    pub fn system(&self, name: &str) -> EngineResult<Option<Vec<u8>>> {
        self.get::<System>(name)
    }

    /// Names in `system` from `from` (inclusive) to `to` (exclusive), in
    /// order, at most `limit`.
    pub fn system_names(&self, from: &str, to: &str, limit: usize) -> EngineResult<Vec<String>> {
        let range = KeyRange::from_to(System::key(from), Some(System::key(to).to_vec()));
        self.keys::<System>(range, limit)
    }

    /// Chunk records in id order, starting after `after`, at most `limit`.
    pub fn chunks_page(
        &self,
        after: Option<&ChunkId>,
        limit: usize,
    ) -> EngineResult<Vec<(ChunkId, ChunkRecord)>> {
        self.page::<Chunks>(KeyRange::after(after.map(Chunks::key)), limit)
    }
}

impl MetaBatch {
    /// Makes the batch conditional on chunk `id` having a record.
    pub fn guard_chunk_present(&mut self, id: &ChunkId) {
        self.guard_present::<Chunks>(id);
    }

    pub fn put_bucket(&mut self, name: &str, rec: &BucketRecord) -> EngineResult<()> {
        self.put::<Buckets>(name, rec);
        Ok(())
    }

    pub fn delete_bucket(&mut self, name: &str) -> EngineResult<()> {
        self.delete::<Buckets>(name);
        Ok(())
    }

    /// Writes a version record; a small object's sealed bytes go to
    /// `inline_data` under its version id (see [`ObjectVersion::encode_stored`]).
    pub fn put_object(&mut self, bucket_id: u64, key: &str, v: &ObjectVersion) -> EngineResult<()> {
        self.put::<Objects>((bucket_id, key), v);
        Ok(())
    }

    /// Removes a version's inline bytes (a no-op for a record that keeps
    /// them itself, written before the `inline_data` column family).
    pub fn delete_inline_data(&mut self, version: VersionId) -> EngineResult<()> {
        self.delete::<crate::meta::InlineData>(version);
        Ok(())
    }

    pub fn delete_object(&mut self, bucket_id: u64, key: &str) -> EngineResult<()> {
        self.delete::<Objects>((bucket_id, key));
        Ok(())
    }

    pub fn put_manifest_block(
        &mut self,
        version: VersionId,
        block: u32,
        b: &ManifestBlock,
    ) -> EngineResult<()> {
        self.put::<Manifests>((version, block), b);
        Ok(())
    }

    pub fn delete_manifest_block(&mut self, version: VersionId, block: u32) -> EngineResult<()> {
        self.delete::<Manifests>((version, block));
        Ok(())
    }

    pub fn chunk_ref(&mut self, id: &ChunkId, delta: &ChunkRefDelta) -> EngineResult<()> {
        self.merge::<Chunks>(id, delta);
        Ok(())
    }

    /// Removes a chunk record (garbage collection, under the chunk's lock).
    pub fn delete_chunk(&mut self, id: &ChunkId) -> EngineResult<()> {
        self.delete::<Chunks>(id);
        Ok(())
    }

    pub fn put_upload(&mut self, id: UploadId, rec: &UploadRecord) -> EngineResult<()> {
        self.put::<Uploads>(id, rec);
        Ok(())
    }

    pub fn delete_upload(&mut self, id: UploadId, rec: &UploadRecord) -> EngineResult<()> {
        self.delete_upload_and_index(id, rec);
        Ok(())
    }

    pub fn put_part(&mut self, upload: UploadId, n: u32, p: &PartRecord) -> EngineResult<()> {
        self.put::<Parts>((upload, n), p);
        Ok(())
    }

    pub fn delete_part(&mut self, upload: UploadId, n: u32) -> EngineResult<()> {
        self.delete::<Parts>((upload, n));
        Ok(())
    }

    pub fn put_system(&mut self, name: &str, value: &[u8]) -> EngineResult<()> {
        self.push_put(System::CF, System::key(name).to_vec(), value.to_vec());
        Ok(())
    }

    pub fn delete_system(&mut self, name: &str) -> EngineResult<()> {
        self.delete::<System>(name);
        Ok(())
    }
}
