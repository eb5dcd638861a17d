// A bounded cache of 4 KiB pages of Index files, standing in for the mmap upstream uses.
//
// Dirty pages stay until a flush writes them back; pinned pages (a file's header page and the page
// the next entry goes to) stay while pinned; every other page is clean and is evicted least recently
// used first once more than `maxPages` pages are resident. So the memory held is `maxPages` pages
// plus whatever is dirty since the last flush (the owner flushes early when that grows past the
// limit), whatever the size of the files.

export const INDEX_PAGE_SIZE = 4096;
/** Resident pages kept per IndexService before clean ones are evicted: 8192 x 4 KiB = 32 MiB, enough
 * for the whole slot table of a default file (5,000,000 slots x 4 B = 4883 pages) plus recent entries. */
export const DEFAULT_MAX_CACHED_PAGES = 8192;
/** Page numbers per file are packed below this in the cache key (2^24 pages = 64 GiB per file). */
const PAGES_PER_FILE_KEY_SPACE = 2 ** 24;

export interface CachedPage {
  readonly key: number;
  readonly fileSeq: number;
  readonly pageNo: number;
  readonly buf: Buffer;
  dirty: boolean;
  /** Bumped on every modification, so a flush can tell whether a page changed while it was being written. */
  version: number;
  pins: number;
}

export class PageCache {
  readonly maxPages: number;
  private readonly resident = new Map<number, CachedPage>();
  /** Clean, unpinned pages in least-recently-used order (oldest first): the eviction candidates. */
  private readonly lru = new Map<number, CachedPage>();
  private readonly dirtyPages = new Set<CachedPage>();

  constructor(maxPages: number = DEFAULT_MAX_CACHED_PAGES) {
    if (!Number.isInteger(maxPages) || maxPages < 4)
      throw new RangeError(`maxPages must be an integer >= 4, got ${maxPages}`);
    this.maxPages = maxPages;
  }

  static keyOf(fileSeq: number, pageNo: number): number {
    return fileSeq * PAGES_PER_FILE_KEY_SPACE + pageNo;
  }

  /** Resident pages (clean + dirty + pinned). */
  get size(): number {
    return this.resident.size;
  }

  get dirtyCount(): number {
    return this.dirtyPages.size;
  }

  /** The page if resident, marking it recently used. */
  get(fileSeq: number, pageNo: number): CachedPage | undefined {
    const key = PageCache.keyOf(fileSeq, pageNo);
    const page = this.resident.get(key);
    if (page !== undefined && this.lru.delete(key)) this.lru.set(key, page);
    return page;
  }

  /**
   * Adds a page read from disk or created empty (the caller must not add a page twice). `dirty`:
   * the caller is about to modify it, so it must not be evicted even for a moment.
   */
  insert(fileSeq: number, pageNo: number, buf: Buffer, opts: { dirty?: boolean } = {}): CachedPage {
    if (pageNo >= PAGES_PER_FILE_KEY_SPACE)
      throw new RangeError(`page ${pageNo} is beyond the cache key space`);
    const key = PageCache.keyOf(fileSeq, pageNo);
    if (this.resident.has(key)) throw new Error(`page ${pageNo} of file ${fileSeq} is already cached`);
    const page: CachedPage = { key, fileSeq, pageNo, buf, dirty: false, version: 0, pins: 0 };
    this.resident.set(key, page);
    if (opts.dirty) this.markDirty(page);
    else this.lru.set(key, page);
    this.evict();
    return page;
  }

  /** Records a modification: the page will not be evicted before it is written back. */
  markDirty(page: CachedPage): void {
    if (page.dirty) {
      // Dirty pages are never evicted, so it is resident (or its file was dropped: then nothing matters).
      page.version++;
      return;
    }
    this.adopt(page);
    page.version++;
    page.dirty = true;
    this.lru.delete(page.key);
    this.dirtyPages.add(page);
  }

  /**
   * Makes `page` resident again if it was evicted after the caller obtained it (a clean page can go
   * as soon as other pages arrive). Two different copies of one page would lose writes: refused.
   */
  private adopt(page: CachedPage): void {
    const current = this.resident.get(page.key);
    if (current === page) return;
    if (current !== undefined) throw new Error(`page ${page.pageNo} of file ${page.fileSeq} is cached twice`);
    this.resident.set(page.key, page);
    if (!page.dirty && page.pins === 0) this.lru.set(page.key, page);
  }

  /** After a write-back: clean again unless modified since `writtenVersion`. */
  markWritten(page: CachedPage, writtenVersion: number): void {
    if (!page.dirty || page.version !== writtenVersion || !this.resident.has(page.key)) return;
    page.dirty = false;
    this.dirtyPages.delete(page);
    if (page.pins === 0) this.lru.set(page.key, page);
    this.evict();
  }

  pin(page: CachedPage): void {
    this.adopt(page);
    page.pins++;
    this.lru.delete(page.key);
  }

  unpin(page: CachedPage): void {
    if (page.pins === 0) return;
    page.pins--;
    if (page.pins === 0 && !page.dirty && this.resident.has(page.key)) {
      this.lru.set(page.key, page);
      this.evict();
    }
  }

  /** Dirty pages of one file, in page order. */
  dirtyPagesOf(fileSeq: number): CachedPage[] {
    const out: CachedPage[] = [];
    for (const p of this.dirtyPages) if (p.fileSeq === fileSeq) out.push(p);
    return out.sort((a, b) => a.pageNo - b.pageNo);
  }

  /** Forgets every page of a file (deleted or truncated away), dirty ones included. */
  dropFile(fileSeq: number): void {
    for (const [key, page] of this.resident) {
      if (page.fileSeq !== fileSeq) continue;
      this.resident.delete(key);
      this.lru.delete(key);
      this.dirtyPages.delete(page);
    }
  }

  clear(): void {
    this.resident.clear();
    this.lru.clear();
    this.dirtyPages.clear();
  }

  private evict(): void {
    while (this.resident.size > this.maxPages) {
      const oldest = this.lru.keys().next();
      if (oldest.done) return; // only dirty or pinned pages left: the owner flushes
      this.lru.delete(oldest.value);
      this.resident.delete(oldest.value);
    }
  }
}
