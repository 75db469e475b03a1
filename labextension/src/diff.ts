/**
 * The review of a proposed replacement: a line diff under the cell's input
 * with Accept and Reject. Built with textContent only (the texts come from
 * the kernel and the model: never HTML).
 */
import { Cell } from '@jupyterlab/cells';
import { PanelLayout, Widget } from '@lumino/widgets';

type Line = { kind: ' ' | '-' | '+'; text: string };

/** A line diff (longest common subsequence; very long cells show old then new). */
export function diffLines(before: string, after: string): Line[] {
  const a = before.split('\n');
  const b = after.split('\n');
  if (a.length * b.length > 4000000) {
    return [
      ...a.map(text => ({ kind: '-' as const, text })),
      ...b.map(text => ({ kind: '+' as const, text }))
    ];
  }
  const n = a.length;
  const m = b.length;
  const lcs: Uint32Array[] = [];
  for (let i = 0; i <= n; i++) {
    lcs.push(new Uint32Array(m + 1));
  }
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out: Line[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      out.push({ kind: ' ', text: a[i] });
      i++;
      j++;
    } else if (i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      out.push({ kind: '-', text: a[i] }); // removed lines first, as diffs read
      i++;
    } else {
      out.push({ kind: '+', text: b[j] });
      j++;
    }
  }
  return out;
}

const views = new WeakMap<Cell, DiffView>();

export class DiffView extends Widget {
  /** Show a diff under `cell`'s input; `done(true)` on Accept, `done(false)` on Reject. */
  static show(
    cell: Cell,
    before: string,
    after: string,
    done: (accepted: boolean) => void
  ): DiffView {
    views.get(cell)?.finish(false);
    const view = new DiffView(before, after, done);
    views.set(cell, view);
    const layout = cell.layout as PanelLayout;
    const at = layout.widgets.findIndex(w => w.node.contains(cell.inputArea?.node ?? null));
    layout.insertWidget(at < 0 ? layout.widgets.length : at + 1, view);
    return view;
  }

  private _done: ((accepted: boolean) => void) | null;

  constructor(before: string, after: string, done: (accepted: boolean) => void) {
    super();
    this._done = done;
    this.addClass('glm-bridge-diff');
    const title = document.createElement('div');
    title.className = 'glm-bridge-diff-title';
    title.textContent = 'glm-magic proposes this change to the cell:';
    const pre = document.createElement('pre');
    for (const line of diffLines(before, after)) {
      const row = document.createElement('div');
      row.className =
        line.kind === '+' ? 'glm-bridge-add' : line.kind === '-' ? 'glm-bridge-del' : 'glm-bridge-same';
      row.textContent = `${line.kind} ${line.text}`;
      pre.appendChild(row);
    }
    const bar = document.createElement('div');
    bar.className = 'glm-bridge-diff-bar';
    const accept = document.createElement('button');
    accept.className = 'jp-Button jp-mod-accept glm-bridge-accept';
    accept.textContent = 'Accept';
    accept.onclick = () => this.finish(true);
    const reject = document.createElement('button');
    reject.className = 'jp-Button glm-bridge-reject';
    reject.textContent = 'Reject';
    reject.onclick = () => this.finish(false);
    bar.append(accept, reject);
    this.node.append(title, pre, bar);
  }

  finish(accepted: boolean): void {
    const done = this._done;
    this._done = null;
    this.dispose();
    if (done) {
      done(accepted);
    }
  }
}
