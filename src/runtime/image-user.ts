import { constants, promises as fs } from 'node:fs';
import path from 'node:path';

import { RuntimeError } from './runtime.js';

/**
 * The user an image's config names (`User`: `name`, `uid`, `name:group`, `uid:gid` and
 * the mixed forms), resolved as containerd resolves it for Kubernetes: names through the
 * image's own /etc/passwd and /etc/group; a uid without a group takes its passwd entry's
 * group, or 0 where it has none; the user's memberships in /etc/group become additional
 * groups. Images such as `USER node` or `USER nginx` need the names.
 *
 * The files are read from the image's unpacked layers, top layer first: the first layer
 * that has the path decides (a regular file is read; a whiteout, a link or anything else
 * means the image has none). An opaque /etc of an upper layer is not seen (reading its
 * mark needs xattrs), so a lower layer's file can stand in for one that layer removed.
 */

export interface ImageIdentity {
  uid: number;
  gid: number;
  additionalGids?: number[];
}

/** Larger files are not an account database; they count as absent. */
const MAX_FILE_BYTES = 1 << 20;

interface Account {
  name: string;
  id: number;
  gid?: number;
  members?: string[];
}

/** Entries of /etc/passwd (name, uid, gid) or /etc/group (name, gid, members). */
export function parseAccounts(text: string, kind: 'passwd' | 'group'): Account[] {
  const out: Account[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields.length < 3 || fields[0] === '' || line.startsWith('#')) continue;
    const id = Number(fields[2]);
    if (!/^\d+$/.test(fields[2]) || !Number.isSafeInteger(id)) continue;
    if (kind === 'passwd') {
      const gid = /^\d+$/.test(fields[3] ?? '') ? Number(fields[3]) : undefined;
      out.push({ name: fields[0], id, gid });
    } else {
      const members = (fields[3] ?? '').split(',').filter((m) => m !== '');
      out.push({ name: fields[0], id, members });
    }
  }
  return out;
}

/**
 * Resolves `user` against the image's passwd and group texts (undefined where the image
 * has none). Throws RuntimeError('CreateContainerError') for a name the files lack.
 */
export function resolveImageUser(
  user: string | undefined,
  passwdText: string | undefined,
  groupText: string | undefined,
): ImageIdentity {
  if (!user) return { uid: 0, gid: 0 };
  const [userPart, groupPart] = splitOnce(user);
  const passwd = parseAccounts(passwdText ?? '', 'passwd');
  const groups = parseAccounts(groupText ?? '', 'group');

  const numeric = /^\d+$/.test(userPart);
  const entry = numeric
    ? passwd.find((p) => p.id === Number(userPart))
    : passwd.find((p) => p.name === userPart);
  if (!numeric && !entry) {
    throw new RuntimeError(
      'CreateContainerError',
      `image user "${userPart}" is not in the image's /etc/passwd`,
    );
  }
  const uid = numeric ? Number(userPart) : entry!.id;

  let gid: number;
  if (groupPart === undefined) gid = entry?.gid ?? 0;
  else if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
  else {
    const group = groups.find((g) => g.name === groupPart);
    if (!group) {
      throw new RuntimeError(
        'CreateContainerError',
        `image group "${groupPart}" is not in the image's /etc/group`,
      );
    }
    gid = group.id;
  }
  const name = entry?.name;
  const extra = name
    ? [...new Set(groups.filter((g) => g.members?.includes(name) && g.id !== gid).map((g) => g.id))]
    : [];
  return extra.length > 0 ? { uid, gid, additionalGids: extra } : { uid, gid };
}

function splitOnce(user: string): [string, string | undefined] {
  const colon = user.indexOf(':');
  return colon < 0 ? [user, undefined] : [user.slice(0, colon), user.slice(colon + 1)];
}

/** `rel` (below the root, e.g. etc/passwd) as the image's layers show it; see above. */
export async function readImageFile(layerDirs: string[], rel: string): Promise<string | undefined> {
  for (const layer of [...layerDirs].reverse()) {
    const found = await inLayer(layer, rel.split('/'));
    if (found === 'absent') continue;
    return found === 'hidden' ? undefined : readBounded(found.file);
  }
  return undefined;
}

/**
 * What one layer has at `parts`: the regular file, nothing (lower layers decide), or
 * something else that hides whatever lower layers have (a whiteout, a link, a file where
 * a directory was).
 */
async function inLayer(
  layer: string,
  parts: string[],
): Promise<'absent' | 'hidden' | { file: string }> {
  let at = layer;
  for (const [i, part] of parts.entries()) {
    at = path.join(at, part);
    const st = await fs.lstat(at).catch(() => undefined);
    if (!st) return 'absent';
    if (i === parts.length - 1) return st.isFile() ? { file: at } : 'hidden';
    if (!st.isDirectory()) return 'hidden';
  }
  return 'absent';
}

async function readBounded(file: string): Promise<string | undefined> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.size > MAX_FILE_BYTES) return undefined;
    return (await handle.readFile()).toString('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * The identity the container runs as before its securityContext's groups: the image's
 * User, or the pod's runAsUser where it has one (whose group then comes from the image's
 * passwd entry for that uid, or 0, as containerd does; the image's User is not looked up).
 */
export async function imageIdentity(
  user: string | undefined,
  layerDirs: string[],
  runAsUser?: number,
): Promise<ImageIdentity> {
  const wanted = runAsUser !== undefined ? String(runAsUser) : user;
  if (!wanted) return { uid: 0, gid: 0 };
  const { passwd, group } = await accountFiles(layerDirs);
  return resolveImageUser(wanted, passwd, group);
}

/** Images whose account files are kept, the most recently used last. */
const MAX_CACHED_IMAGES = 64;
const cached = new Map<string, Promise<{ passwd?: string; group?: string }>>();

/**
 * The image's passwd and group texts. A layer's directory is named by its digest and never
 * changes once unpacked, so each image's files are read once, not at every create.
 */
function accountFiles(layerDirs: string[]): Promise<{ passwd?: string; group?: string }> {
  const key = layerDirs.join('\0');
  let files = cached.get(key);
  if (files) cached.delete(key);
  else {
    files = Promise.all([
      readImageFile(layerDirs, 'etc/passwd'),
      readImageFile(layerDirs, 'etc/group'),
    ]).then(([passwd, group]) => ({ passwd, group }));
    // A read that failed is tried again at the next create.
    files.catch(() => cached.delete(key));
  }
  cached.set(key, files);
  if (cached.size > MAX_CACHED_IMAGES) cached.delete(cached.keys().next().value!);
  return files;
}
