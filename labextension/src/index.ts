/**
 * glm-magic notebook bridge (JupyterLab 4 / Notebook 7).
 *
 * The kernel side of glm-magic opens a comm (target `glm_magic.bridge`).
 * This extension answers `hello`, pushes a snapshot of the live notebook
 * before each cell runs, and carries out the few operations the schema
 * allows: insert cells (for the agent: with their outputs, untrusted),
 * propose a replacement (a diff the user accepts or rejects), answer a
 * snapshot request, show the agent's approval cards (approval.ts).
 * Everything from the kernel is data: sources become cell text, notes become
 * textContent; nothing is rendered as trusted HTML or run. Protocol: docs/bridge.md.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { CodeCell } from '@jupyterlab/cells';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import {
  INotebookTracker,
  Notebook,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';

import { Approvals } from './approval';
import { DiffView } from './diff';
import { snapshot } from './snapshot';
import {
  ACTIVE,
  FEATURES,
  IApproveMessage,
  InsertMessage,
  ReplaceMessage,
  TARGET,
  VERSION,
  validate
} from './protocol';

interface IState {
  comm: Kernel.IComm | null;
  /** The agent's approval cards on this kernel connection. */
  approvals: Approvals | null;
  /** Cells inserted with a `key`: key -> the cell's id, and where it was inserted. */
  keys: Map<string, { id: string; after: string }>;
}

/** Per notebook panel: the comm to its kernel, if glm-magic opened one. */
const states = new WeakMap<NotebookPanel, IState>();
/** Notes next to clicked Insert buttons, by the action id the kernel echoes. */
const pendingNotes = new Map<string, HTMLElement>();

function warn(text: string): void {
  console.warn(`glm-magic bridge: ${text}`);
}

function randomId(): string {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
}

function send(panel: NotebookPanel, data: Record<string, any>): boolean {
  const comm = states.get(panel)?.comm;
  if (!comm || comm.isDisposed) {
    return false;
  }
  comm.send({ v: VERSION, ...data });
  return true;
}

function cellIndex(notebook: Notebook, cellId: string): number {
  if (cellId === ACTIVE) {
    return notebook.activeCellIndex;
  }
  return notebook.widgets.findIndex(cell => cell.model.id === cellId);
}

/** Where `after` (a cell id, a key, ACTIVE) is; a deleted keyed cell's place is where it went. */
function anchorIndex(panel: NotebookPanel, after: string): number {
  const keys = states.get(panel)?.keys;
  for (let hops = 0; hops < 1000; hops++) {
    const entry = keys?.get(after);
    const at = cellIndex(panel.content, entry ? entry.id : after);
    if (at >= 0 || !entry) {
      return at;
    }
    after = entry.after; // that cell was deleted: use what it was inserted after
  }
  return -1;
}

/** The code cell showing the run of execute request `parent` (the agent's running cell). */
function cellOfRun(panel: NotebookPanel, parent: string): CodeCell | null {
  for (const cell of panel.content.widgets) {
    if (cell instanceof CodeCell && cell.outputArea.future?.msg.header.msg_id === parent) {
      return cell;
    }
  }
  return null;
}

function countOf(notebook: Notebook, index: number): number | null {
  const model: any = notebook.widgets[index]?.model;
  return model?.type === 'code' ? model.executionCount ?? null : null;
}

function doInsert(panel: NotebookPanel, msg: InsertMessage): void {
  const notebook = panel.content;
  const index = anchorIndex(panel, msg.after);
  const note = pendingNotes.get(msg.id);
  pendingNotes.delete(msg.id);
  if (index < 0 || !notebook.model) {
    send(panel, {
      op: 'result',
      id: msg.id,
      status: 'failed',
      message: 'the cell to insert after is not in the notebook'
    });
    if (note) {
      note.textContent = 'Not inserted: that cell is no longer in the notebook.';
    }
    return;
  }
  // No `trusted` in the metadata: outputs from the kernel render untrusted (sanitised, no scripts).
  const cells = msg.cells.map(cell => ({
    cell_type: cell.cell_type,
    source: cell.source,
    metadata: { glm_magic: msg.provenance },
    ...(cell.cell_type === 'code'
      ? { outputs: cell.outputs ?? [], execution_count: cell.execution_count ?? null }
      : {})
  }));
  const made = notebook.model.sharedModel.insertCells(index + 1, cells as any);
  const keys = states.get(panel)?.keys;
  msg.cells.forEach((cell, i) => {
    if (cell.key !== undefined && made[i] && keys) {
      const before = i === 0 ? msg.after : msg.cells[i - 1].key ?? made[i - 1].getId();
      keys.set(cell.key, { id: made[i].getId(), after: before });
    }
  });
  const below = countOf(notebook, index);
  send(panel, { op: 'result', id: msg.id, status: 'inserted', below });
  if (note) {
    const where = below === null ? 'the selected cell' : `[${below}]`;
    note.textContent = `Inserted below ${where}.`;
  }
}

function doReplace(panel: NotebookPanel, msg: ReplaceMessage): void {
  const notebook = panel.content;
  const index = cellIndex(notebook, msg.cell_id);
  const cell = notebook.widgets[index];
  if (msg.cell_id === ACTIVE || !cell) {
    send(panel, {
      op: 'result',
      id: msg.id,
      status: 'failed',
      message: 'the cell to replace is not in the notebook'
    });
    return;
  }
  const old = cell.model.sharedModel.getSource();
  DiffView.show(cell, old, msg.source, accepted => {
    if (accepted && !cell.isDisposed) {
      const shared: any = cell.model.sharedModel;
      // One transaction: Ctrl+Z in the cell restores the old source in one step.
      shared.transact(() => {
        shared.setSource(msg.source);
        shared.setMetadata('glm_magic', msg.provenance);
      });
    }
    send(panel, {
      op: 'result',
      id: msg.id,
      status: accepted ? 'accepted' : 'rejected'
    });
  });
}

function doApprove(panel: NotebookPanel, msg: IApproveMessage, parent: string | null): void {
  const approvals = states.get(panel)?.approvals;
  const cell =
    msg.cell_id !== null
      ? panel.content.widgets[cellIndex(panel.content, msg.cell_id)]
      : parent
        ? cellOfRun(panel, parent)
        : null;
  if (!cell || !approvals) {
    // The input box still asks: nothing is lost without the card.
    warn('approve: the agent\'s cell is not in this notebook; answer in its input box');
    return;
  }
  approvals.show(cell, msg, parent);
}

function onMessage(panel: NotebookPanel, data: unknown, parent: string | null): void {
  const msg = validate(data);
  if (typeof msg === 'string') {
    warn(`refused a message: ${msg}`);
    return;
  }
  if (msg.op === 'insert') {
    doInsert(panel, msg);
  } else if (msg.op === 'replace') {
    doReplace(panel, msg);
  } else if (msg.op === 'snapshot_request') {
    send(panel, snapshot(panel, null, msg.id));
  } else if (msg.op === 'approve') {
    doApprove(panel, msg, parent);
  } else if (msg.op === 'approve_done') {
    states.get(panel)?.approvals?.done(msg.id);
  }
}

/** CodeMirror's languages when JupyterLab provides them (the cards highlight code). */
let languages: IEditorLanguageRegistry | null = null;

function attach(
  app: JupyterFrontEnd,
  panel: NotebookPanel,
  comm: Kernel.IComm,
  hello: unknown
): void {
  const checked = validate(hello);
  if (typeof checked === 'string' || checked.op !== 'hello') {
    warn(
      `refused the kernel's bridge: ${typeof checked === 'string' ? checked : 'no hello'}`
    );
    return;
  }
  const state: IState = states.get(panel) ?? { comm: null, approvals: null, keys: new Map() };
  states.set(panel, state);
  state.comm = comm;
  const kernel = panel.sessionContext.session?.kernel;
  if (kernel && !state.approvals) {
    state.approvals = new Approvals(kernel, parent => cellOfRun(panel, parent), languages);
  }
  comm.onMsg = (msg: KernelMessage.ICommMsgMsg) =>
    onMessage(panel, msg.content.data, (msg.parent_header as any)?.msg_id || null);
  comm.onClose = () => {
    if (state.comm === comm) {
      state.comm = null;
    }
  };
  send(panel, { op: 'hello', frontend: `${app.name} ${app.version}`, features: FEATURES });
}

function connect(app: JupyterFrontEnd, panel: NotebookPanel): void {
  const kernel = panel.sessionContext.session?.kernel;
  if (!kernel) {
    return;
  }
  kernel.registerCommTarget(TARGET, (comm, msg) =>
    attach(app, panel, comm, msg.content.data)
  );
  // A page opened after the kernel loaded glm-magic attaches to its open comm.
  kernel
    .requestCommInfo({ target_name: TARGET })
    .then(reply => {
      const content: any = reply.content;
      if (content.status !== 'ok' || kernel.isDisposed) {
        return;
      }
      for (const commId of Object.keys(content.comms ?? {})) {
        if (kernel.hasComm(commId)) {
          continue;
        }
        const comm = kernel.createComm(TARGET, commId);
        attach(app, panel, comm, { v: VERSION, op: 'hello', kernel: 'attached' });
      }
    })
    .catch(() => undefined);
}

/** The cell selected before a press on an Insert button (the press selects the button's cell). */
let activeBeforePress: string | null = null;

function onPress(tracker: INotebookTracker, event: MouseEvent): void {
  const button = (event.target as Element | null)?.closest?.('button.glm-insert');
  activeBeforePress = null;
  tracker.forEach(panel => {
    if (button && panel.node.contains(button)) {
      activeBeforePress = panel.content.activeCell?.model.id ?? null;
    }
  });
}

/** Insert buttons in replies glm-magic showed: through the kernel, which knows where. */
function onClick(tracker: INotebookTracker, event: MouseEvent): void {
  const button = (event.target as Element | null)?.closest?.('button.glm-insert');
  const box = button?.closest('.glm-code');
  if (!button || !box) {
    return;
  }
  let token = '';
  for (let node: Element | null = box; node && !token; node = node.parentElement) {
    for (const name of Array.from(node.classList)) {
      const match = /^glm-bridge-([0-9a-f]{16})$/.exec(name);
      if (match) {
        token = match[1];
      }
    }
  }
  let panel: NotebookPanel | null = null;
  tracker.forEach(candidate => {
    if (candidate.node.contains(box)) {
      panel = candidate;
    }
  });
  if (!token || !panel || !states.get(panel)?.comm) {
    return; // no bridge here: the button copies, as without the extension
  }
  event.preventDefault();
  event.stopImmediatePropagation();
  const id = randomId();
  const note = box.querySelector('.glm-note') as HTMLElement | null;
  if (note) {
    note.textContent = 'Inserting when the kernel is free…';
    pendingNotes.set(id, note);
  }
  send(panel, {
    op: 'action',
    id,
    token,
    active: activeBeforePress,
    code: box.getAttribute('data-code') ?? ''
  });
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'glm-magic-bridge:plugin',
  description: 'Lets glm-magic insert cells, propose reviewed replacements and read the live notebook.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [IEditorLanguageRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    registry: IEditorLanguageRegistry | null
  ) => {
    languages = registry;
    const watch = (panel: NotebookPanel): void => {
      panel.sessionContext.ready.then(() => connect(app, panel));
      panel.sessionContext.kernelChanged.connect(() => {
        states.get(panel)?.approvals?.dispose();
        states.delete(panel);
        connect(app, panel);
      });
      panel.disposed.connect(() => states.get(panel)?.approvals?.dispose());
    };
    // Notebooks opened before this plugin activated (a URL, a restored layout) too.
    tracker.forEach(watch);
    tracker.widgetAdded.connect((_, panel) => watch(panel));
    // Pushed before the execute request, so the kernel handles it first.
    NotebookActions.executionScheduled.connect((_, { notebook, cell }) => {
      tracker.forEach(panel => {
        if (panel.content === notebook && states.get(panel)?.comm) {
          send(panel, snapshot(panel, cell.model.id, null));
        }
      });
    });
    document.addEventListener('mousedown', event => onPress(tracker, event), true);
    document.addEventListener('click', event => onClick(tracker, event), true);
  }
};

export default plugin;
