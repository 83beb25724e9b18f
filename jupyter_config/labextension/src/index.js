// The "Agent changes" sidebar: the changes MCP agents made to the notebook
// in the main area, newest first, as they happen, with Revert. It talks to
// the sidecar behind the proxy (<lab>/mcp/changes) with the lab's own
// credentials (ServerConnection: token header, XSRF header from the cookie).
import { ServerConnection } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

const PLUGIN_ID = 'jupyter-mcp-sidecar-changes:plugin';
// New changes show up within this long. A poll (not the embed page's event
// stream) because the list is the record's, which agents on other
// sessions, restarts and undos all change; one small GET per 2 s while the
// sidebar is shown.
const POLL_MS = 2000;
const HIGHLIGHT_CLASS = 'jp-McpChanges-highlighted';

const icon = new LabIcon({
  name: 'jupyter-mcp-sidecar-changes:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16"><g class="jp-icon3" fill="#616161">' +
    '<path d="M13 3a9 9 0 0 0-9 9H1l3.9 3.9L9 12H6a7 7 0 1 1 2.1 5l-1.4 1.4A9 9 0 1 0 13 3zm-1 5v5l4.3 2.5.7-1.2-3.5-2.1V8z"/></g></svg>'
});

// A notebook panel is a document widget whose context is a .ipynb file.
function notebookPath(widget) {
  const path = widget && !widget.isDisposed && widget.context && widget.context.path;
  return typeof path === 'string' && path.endsWith('.ipynb') && widget.content ? path : null;
}

async function call(settings, path, init) {
  const url = settings.baseUrl + 'mcp/changes' + path;
  const resp = await ServerConnection.makeRequest(url, init || {}, settings);
  let body = null;
  try {
    body = await resp.json();
  } catch (e) {
    body = null;
  }
  if (!resp.ok) {
    const msg = body && body.error ? body.error : resp.status + ' ' + resp.statusText;
    throw new Error(msg);
  }
  return body;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function cellSummary(c) {
  switch (c.op) {
    case 'move':
      return 'moved cell ' + (c.index + 1) + ' to ' + (c.to + 1);
    case 'outputs':
      return 'outputs of cell ' + (c.index + 1) + (c.summary ? ': ' + c.summary : '');
    default:
      return c.op + ' cell ' + (c.index + 1);
  }
}

function renderDiff(diff) {
  const pre = el('pre', 'jp-McpChanges-diff');
  for (const line of diff.split('\n')) {
    let cls = 'jp-McpChanges-ctx';
    if (line.startsWith('+')) cls = 'jp-McpChanges-add';
    else if (line.startsWith('-')) cls = 'jp-McpChanges-del';
    else if (line.startsWith('@')) cls = 'jp-McpChanges-hunk';
    pre.appendChild(el('span', cls, line + '\n'));
  }
  return pre;
}

class ChangesPanel extends Widget {
  constructor(settings) {
    super();
    this.id = 'jupyter-mcp-sidecar-changes';
    this.addClass('jp-McpChanges');
    this.title.icon = icon;
    this.title.caption = 'Agent changes';
    this._settings = settings;
    this._panel = null;
    this._data = '';
    this._changes = [];
    this._error = '';
    this._selected = null;
    this._confirming = null; // the change whose "Revert all since" asks to confirm
    this._timer = 0;
    this._busy = false;
    this._header = el('div', 'jp-McpChanges-header', 'Agent changes');
    this._path = el('div', 'jp-McpChanges-path');
    this._status = el('div', 'jp-McpChanges-error');
    this._status.setAttribute('role', 'alert');
    this._list = el('ul', 'jp-McpChanges-list');
    this.node.append(this._header, this._path, this._status, this._list);
    this._render();
  }

  setNotebook(panel) {
    if (panel === this._panel) return;
    this._panel = panel;
    this._data = '';
    this._changes = [];
    this._selected = null;
    this._confirming = null;
    this._error = '';
    this._render();
    this.refresh();
  }

  onAfterShow() {
    this.refresh();
    this._timer = window.setInterval(() => this.refresh(), POLL_MS);
  }

  onBeforeHide() {
    window.clearInterval(this._timer);
    this._timer = 0;
  }

  dispose() {
    window.clearInterval(this._timer);
    super.dispose();
  }

  async refresh() {
    const panel = this._panel;
    const path = notebookPath(panel);
    if (!path || this._busy) return;
    this._busy = true;
    try {
      const out = await call(this._settings, '?path=' + encodeURIComponent(path) + '&limit=200');
      if (panel !== this._panel) return;
      const data = JSON.stringify(out.changes);
      if (data !== this._data) {
        this._data = data;
        this._changes = out.changes;
        this._render();
      }
    } catch (e) {
      if (panel === this._panel) this._showError('Could not list the changes: ' + e.message);
    } finally {
      this._busy = false;
    }
  }

  async _revert(change, since) {
    const path = notebookPath(this._panel);
    if (!path) return;
    const body = since ? { path, since_change_id: change.id } : { path, change_ids: [change.id] };
    try {
      await call(this._settings, '/undo', { method: 'POST', body: JSON.stringify(body) });
      this._showError('');
    } catch (e) {
      this._showError((since ? 'Revert all since change ' : 'Revert change ') + change.id + ' failed: ' + e.message);
    }
    this._data = '';
    await this.refresh();
  }

  // "Revert all since" undoes several changes at once, so it asks first,
  // in the item itself, naming how many of the session's changes go.
  _confirmSince(change) {
    const later = this._changes.filter(x => x.session === change.session && x.id > change.id && !x.undone).length;
    const box = el('div', 'jp-McpChanges-confirm');
    box.append(el('div', 'jp-McpChanges-confirm-text',
      later === 0
        ? 'Revert #' + change.id + '? The session made no later changes.'
        : 'Revert #' + change.id + ' and the ' + later + ' later change' + (later === 1 ? '' : 's') + ' of this session?'));
    const yes = el('button', 'jp-Button jp-mod-styled jp-mod-warn jp-McpChanges-confirm-yes', 'Revert ' + (later + 1) + ' change' + (later === 0 ? '' : 's'));
    const no = el('button', 'jp-Button jp-mod-styled jp-McpChanges-confirm-no', 'Cancel');
    yes.addEventListener('click', ev => {
      ev.stopPropagation();
      this._confirming = null;
      this._revert(change, true);
    });
    no.addEventListener('click', ev => {
      ev.stopPropagation();
      this._confirming = null;
      this._render();
    });
    const actions = el('div', 'jp-McpChanges-actions');
    actions.append(yes, no);
    box.append(actions);
    return box;
  }

  _showError(msg) {
    this._error = msg;
    this._status.textContent = msg;
    this._status.hidden = !msg;
  }

  // Highlights the change's cells in the notebook and scrolls to the first.
  _select(change) {
    this._selected = change.id;
    for (const item of this._list.children) {
      item.classList.toggle('jp-mod-selected', item.dataset.changeId === String(change.id));
    }
    const panel = this._panel;
    if (!panel) return;
    const ids = new Set(change.cells.map(c => c.cell_id));
    let first = null;
    for (const cell of panel.content.widgets) {
      const hit = ids.has(cell.model.id);
      cell.toggleClass(HIGHLIGHT_CLASS, hit);
      if (hit && !first) first = cell;
    }
    if (first) {
      const i = panel.content.widgets.indexOf(first);
      panel.content.activeCellIndex = i;
      if (panel.content.scrollToCell) {
        panel.content.scrollToCell(first).catch(() => undefined);
      } else {
        first.node.scrollIntoView({ block: 'center' });
      }
    }
  }

  _render() {
    const path = notebookPath(this._panel);
    this._path.textContent = path ? path : 'Open a notebook to see what agents changed in it.';
    this._showError(this._error);
    this._list.replaceChildren();
    if (path && this._changes.length === 0) {
      this._list.appendChild(el('li', 'jp-McpChanges-empty', 'No agent changes yet.'));
    }
    for (const c of this._changes) {
      const item = el('li', 'jp-McpChanges-item');
      item.dataset.changeId = String(c.id);
      if (c.undone) item.classList.add('jp-mod-undone');
      if (c.id === this._selected) item.classList.add('jp-mod-selected');
      const head = el('div', 'jp-McpChanges-head');
      head.append(el('span', 'jp-McpChanges-tool', '#' + c.id + ' ' + c.tool));
      const time = el('time', 'jp-McpChanges-time', new Date(c.time).toLocaleTimeString());
      time.dateTime = c.time;
      time.title = c.time;
      head.append(time);
      item.append(head);
      const who = (c.client || 'unknown client') + ' · session ' + (c.session.length > 12 ? c.session.slice(0, 8) + '…' : c.session);
      const whoEl = el('div', 'jp-McpChanges-who', who);
      whoEl.title = c.session;
      item.append(whoEl);
      for (const cc of c.cells) {
        const cell = el('div', 'jp-McpChanges-cell');
        cell.append(el('div', 'jp-McpChanges-op', cellSummary(cc)));
        if (cc.diff) cell.append(renderDiff(cc.diff));
        item.append(cell);
      }
      if (c.undone) {
        item.append(el('div', 'jp-McpChanges-undone', 'Reverted ' + new Date(c.undone).toLocaleTimeString()));
      } else {
        const actions = el('div', 'jp-McpChanges-actions');
        const revert = el('button', 'jp-Button jp-mod-styled jp-mod-warn jp-McpChanges-revert', 'Revert');
        revert.title = 'Undo this change only; later edits stay';
        revert.addEventListener('click', ev => {
          ev.stopPropagation();
          this._revert(c, false);
        });
        const since = el('button', 'jp-Button jp-mod-styled jp-McpChanges-revert-since', 'Revert all since…');
        since.title = 'Undo this change and the later ones of the same session';
        since.addEventListener('click', ev => {
          ev.stopPropagation();
          this._confirming = c.id;
          this._render();
        });
        actions.append(revert, since);
        item.append(actions);
        if (this._confirming === c.id) item.append(this._confirmSince(c));
      }
      item.addEventListener('click', () => this._select(c));
      this._list.appendChild(item);
    }
  }
}

const plugin = {
  id: PLUGIN_ID,
  description: 'Lists the changes MCP agents made to the open notebook, with Revert.',
  autoStart: true,
  activate: app => {
    const panel = new ChangesPanel(app.serviceManager.serverSettings);
    app.shell.add(panel, 'left', { rank: 900 });
    // The sidebar follows the notebook in the main area; focus moving into
    // the sidebar itself leaves it on the last notebook.
    const follow = () => {
      const w = app.shell.currentWidget;
      if (notebookPath(w)) panel.setNotebook(w);
      else if (w && w.context) panel.setNotebook(null);
    };
    app.shell.currentChanged.connect(follow);
    app.restored.then(follow);
  }
};

export default plugin;
