/**
 * The bridge schema, kernel -> frontend side: what the extension accepts.
 *
 * Anything else (another version, an unknown op, a field of the wrong type)
 * is refused with a one-line reason and changes nothing. See docs/bridge.md.
 */

import { checkOutputs, IOutput } from './outputs';

export const TARGET = 'glm_magic.bridge';
export const VERSION = 1;
/** `after` value meaning the cell the user has selected. */
export const ACTIVE = '@active';
/** Optional features this extension names in its hello (the kernel uses only those). */
export const FEATURES = ['agent'];
/** An approval's answers and the `input()` reply each one sends. */
export const ANSWERS = { run: 'y', skip: 'n', all: 'a', stop: 'q' } as const;
export type Answer = keyof typeof ANSWERS;

export type Provenance = Record<string, string>;

export interface IHelloMessage {
  op: 'hello';
  kernel: string;
}

export interface IInsertCell {
  cell_type: 'code' | 'markdown';
  source: string;
  /** A kernel-chosen name a later insert's `after` may use. */
  key?: string;
  outputs?: IOutput[];
  execution_count?: number | null;
}

export interface InsertMessage {
  op: 'insert';
  id: string;
  /** A cell id, a `key` of a cell inserted earlier, or ACTIVE. */
  after: string;
  cells: IInsertCell[];
  provenance: Provenance;
}

export interface IApproveMessage {
  op: 'approve';
  id: string;
  /** The agent's cell; null: the cell whose run sent the message. */
  cell_id: string | null;
  step: number;
  code: string;
  /** The exact prompt of the `input()` request the card answers. */
  prompt: string;
}

export interface IApproveDoneMessage {
  op: 'approve_done';
  id: string;
  answer: Answer;
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
  | ISnapshotRequest
  | IApproveMessage
  | IApproveDoneMessage;

function isString(value: unknown, limit = 200): value is string {
  return typeof value === 'string' && value.length <= limit;
}

function isCount(value: unknown): value is number | null {
  return value === null || (Number.isInteger(value) && (value as number) >= 0);
}

/** One cell of an insert, or a one-line reason it is refused. */
function insertCell(cell: any): IInsertCell | string {
  const kind = cell?.cell_type;
  if ((kind !== 'code' && kind !== 'markdown') || !isString(cell?.source, 1000000)) {
    return 'insert: a cell must be code or markdown text';
  }
  const checked: IInsertCell = { cell_type: kind, source: cell.source };
  if (cell.key !== undefined) {
    if (!isString(cell.key) || cell.key === '') {
      return 'insert: a cell key must be a short string';
    }
    checked.key = cell.key;
  }
  if (cell.execution_count !== undefined) {
    if (kind !== 'code' || !isCount(cell.execution_count)) {
      return 'insert: execution_count must be a count or null, on a code cell';
    }
    checked.execution_count = cell.execution_count;
  }
  if (cell.outputs !== undefined) {
    const outputs = kind === 'code' ? checkOutputs(cell.outputs) : 'only code cells have outputs';
    if (typeof outputs === 'string') {
      return `insert: ${outputs}`;
    }
    checked.outputs = outputs;
  }
  return checked;
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
      const checked: IInsertCell[] = [];
      for (const cell of cells) {
        const one = insertCell(cell);
        if (typeof one === 'string') {
          return one;
        }
        checked.push(one);
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
    case 'approve': {
      const cellId = d.cell_id === null ? null : d.cell_id;
      if (
        !isString(d.id) ||
        (cellId !== null && !isString(cellId)) ||
        !Number.isInteger(d.step) ||
        (d.step as number) < 0 ||
        !isString(d.code, big) ||
        !isString(d.prompt, 1000)
      ) {
        return 'bad approve';
      }
      return {
        op: 'approve',
        id: d.id,
        cell_id: cellId as string | null,
        step: d.step as number,
        code: d.code,
        prompt: d.prompt
      };
    }
    case 'approve_done': {
      const answer = d.answer;
      if (!isString(d.id) || typeof answer !== 'string' || !Object.prototype.hasOwnProperty.call(ANSWERS, answer)) {
        return 'bad approve_done';
      }
      return { op: 'approve_done', id: d.id, answer: answer as Answer };
    }
    default:
      return `unknown op ${JSON.stringify(d.op)}`.slice(0, 120);
  }
}
