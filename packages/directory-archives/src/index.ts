/**
 * @chango/directory-archives: backups in a local directory (month folders,
 * `.sha256` sidecars written last): the second copy's directory target, and
 * what the CLI reads with `--dir`.
 */
export { assertTheArchive, DirectoryArchives, monthOf, NotTheArchive, type ArchiveFacts, type DirectoryEntry, type OpenedDirectoryArchive } from './directory-archives.js';
