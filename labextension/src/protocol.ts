/**
 * The bridge schema, kernel -> frontend side: what the extension accepts.
 *
 * Anything else (another version, an unknown op, a field of the wrong type)
 * is refused with a one-line reason and changes nothing. See docs/bridge.md.
 */

export const TARGET = 'glm_magic.bridge';
export const VERSION = 1;
/** `after` value meaning the cell the user has selected. */
export const ACTIVE = '@active';

export type Provenance = Record<string, string>;

export interface IHelloMessage {
  op: 'hello';
  kernel: string;
}

export interface InsertMessage {
  op: 'insert';
  id: string;
  after: string;
  cells: { cell_type: 'code' | 'markdown'; source: string }[];
  provenance: Provenance;
}

export interface ReplaceMessage {
  op: 'replace';
  id: string;
  cell_id: string;
  source: string;
  provenance: Provenance;
}

export interface ISnapshotRequest {
  op: 'snapshot_request';
  id: string;
}

export type Message =
  | IHelloMessage
  | InsertMessage
  | ReplaceMessage
  | ISnapshotRequest;

function isString(value: unknown, limit = 200): value is string {
  return typeof value === 'string' && value.length <= limit;
}

function provenance(value: unknown): Provenance | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return null;
  }
  const out: Provenance = {};
  for (const [key, item] of Object.entries(value)) {
    if (!isString(key) || !isString(item)) {
      return null;
    }
    out[key] = item;
  }
  return out;
}

/** The message, or a one-line reason it is refused. */
export function validate(data: unknown): Message | string {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return 'not a JSON object';
  }
  const d = data as Record<string, unknown>;
  if (d.v !== VERSION) {
    return `protocol version ${JSON.stringify(d.v)} is not ${VERSION} (update glm-magic or this extension)`;
  }
  const big = 1000000;
  switch (d.op) {
    case 'hello':
      return isString(d.kernel) ? { op: 'hello', kernel: d.kernel } : 'bad hello';
    case 'snapshot_request':
      return isString(d.id) ? { op: 'snapshot_request', id: d.id } : 'bad snapshot_request';
    case 'insert': {
      const prov = provenance(d.provenance);
      const cells = d.cells;
      if (!isString(d.id) || !isString(d.after) || prov === null || !Array.isArray(cells)) {
        return 'bad insert';
      }
      if (cells.length === 0 || cells.length > 100) {
        return 'insert needs 1 to 100 cells';
      }
      const checked: InsertMessage['cells'] = [];
      for (const cell of cells) {
        const kind = cell?.cell_type;
        if ((kind !== 'code' && kind !== 'markdown') || !isString(cell?.source, big)) {
          return 'insert: a cell must be code or markdown text';
        }
        checked.push({ cell_type: kind, source: cell.source });
      }
      return { op: 'insert', id: d.id, after: d.after, cells: checked, provenance: prov };
    }
    case 'replace': {
      const prov = provenance(d.provenance);
      if (!isString(d.id) || !isString(d.cell_id) || !isString(d.source, big) || prov === null) {
        return 'bad replace';
      }
      return { op: 'replace', id: d.id, cell_id: d.cell_id, source: d.source, provenance: prov };
    }
    default:
      return `unknown op ${JSON.stringify(d.op)}`.slice(0, 120);
  }
}
