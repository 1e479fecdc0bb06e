// The tool's identity as recorded in every manifest and object's metadata. Kept in code (and
// pinned to package.json by a test) so that no module reads package.json at run time.
export const TOOL_NAME = 'openclawmu-backup';
export const TOOL_VERSION = '0.1.0';
