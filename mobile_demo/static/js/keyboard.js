// The text field (a contenteditable that also holds stickers) and the emoji keyboard:
// categories, search by name, recently used (kept in localStorage, on this device only).

const RECENT_KEY = 'emotekit.recent';
const RECENT_MAX = 32;

/** Inserting at the caret of a contenteditable, remembering the caret while the field is blurred. */
export class TextField {
  constructor(el) {
    this.el = el;
    this.range = null;
    document.addEventListener('selectionchange', () => {
      const sel = document.getSelection();
      if (sel.rangeCount && el.contains(sel.getRangeAt(0).commonAncestorContainer)) {
        this.range = sel.getRangeAt(0).cloneRange();
      }
    });
  }

  _caret() {
    if (this.range && this.el.contains(this.range.commonAncestorContainer)) return this.range;
    const r = document.createRange();
    r.selectNodeContents(this.el);
    r.collapse(false);
    return r;
  }

  insertNode(node) {
    const r = this._caret();
    r.deleteContents();
    r.insertNode(node);
    r.setStartAfter(node);
    r.collapse(true);
    this.range = r.cloneRange();
    if (document.activeElement === this.el) {
      const sel = document.getSelection();
      sel.removeAllRanges();
      sel.addRange(r);
    }
    this.el.dispatchEvent(new Event('input', {bubbles: true}));
  }

  insertText(text) {
    this.insertNode(document.createTextNode(text));
  }

  insertSticker(dataUrl, label) {
    const img = document.createElement('img');
    img.className = 'sticker';
    img.src = dataUrl;
    img.alt = label;
    img.dataset.sticker = label;
    this.insertNode(img);
  }

  /** The message as text (stickers as their labels). */
  text() {
    let out = '';
    const walk = (node) => {
      for (const c of node.childNodes) {
        if (c.nodeType === Node.TEXT_NODE) out += c.textContent;
        else if (c.nodeName === 'IMG') out += `[${c.alt}]`;
        else if (c.nodeName === 'BR') out += '\n';
        else {
          if (c.nodeName === 'DIV' && out && !out.endsWith('\n')) out += '\n';
          walk(c);
        }
      }
    };
    walk(this.el);
    return out;
  }

  stickers() {
    return [...this.el.querySelectorAll('img.sticker')];
  }

  clear() {
    this.el.replaceChildren();
    this.range = null;
  }
}

export function loadRecent() {
  try {
    const v = JSON.parse(localStorage.getItem(RECENT_KEY) || '[]');
    return Array.isArray(v) ? v.filter((x) => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

export function pushRecent(emoji) {
  const list = [emoji, ...loadRecent().filter((e) => e !== emoji)].slice(0, RECENT_MAX);
  try {
    localStorage.setItem(RECENT_KEY, JSON.stringify(list));
  } catch {
    // storage full or disabled: recents just aren't kept
  }
  return list;
}

/** The keyboard: tabs (recent + categories), a grid, and a search box over names and keywords. */
export class Keyboard {
  constructor({tabs, grid, search}, categories, onPick) {
    this.tabsEl = tabs;
    this.gridEl = grid;
    this.searchEl = search;
    this.categories = categories;
    this.onPick = onPick;
    this.names = new Map();
    for (const c of categories) for (const [ch, name] of c.emoji) this.names.set(ch, name);
    this.active = loadRecent().length ? 'recent' : categories[0]?.name;
    this._tabs();
    this.render();
    search.addEventListener('input', () => this.render());
    grid.addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-emoji]');
      if (b) this.pick(b.dataset.emoji);
    });
  }

  pick(emoji) {
    pushRecent(emoji);
    this.onPick(emoji);
    if (this.active === 'recent' && !this.searchEl.value) this.render();
  }

  _tabs() {
    const mk = (id, icon, label) => {
      const b = document.createElement('button');
      b.setAttribute('role', 'tab');
      b.dataset.tab = id;
      b.textContent = icon;
      b.title = label;
      b.setAttribute('aria-label', label);
      b.addEventListener('click', () => {
        this.active = id;
        this.searchEl.value = '';
        this.render();
      });
      return b;
    };
    this.tabsEl.replaceChildren(
      mk('recent', '🕘', 'Recently used'),
      ...this.categories.map((c) => mk(c.name, c.icon, c.name)),
    );
  }

  _button(ch) {
    const b = document.createElement('button');
    b.dataset.emoji = ch;
    b.textContent = ch;
    const name = this.names.get(ch);
    if (name) b.title = b.ariaLabel = name;
    return b;
  }

  render() {
    const q = this.searchEl.value.trim().toLowerCase();
    let list;
    let empty;
    if (q) {
      const words = q.split(/\s+/);
      list = [];
      for (const c of this.categories) {
        for (const [ch, name, keywords] of c.emoji) {
          const hay = `${name} ${keywords || ''}`;
          if (words.every((w) => hay.includes(w))) list.push(ch);
        }
      }
      empty = `No emoji named “${q}”`;
    } else if (this.active === 'recent') {
      list = loadRecent();
      empty = 'Emoji you use show up here';
    } else {
      list = (this.categories.find((c) => c.name === this.active) || this.categories[0]).emoji.map((e) => e[0]);
    }
    for (const t of this.tabsEl.children) t.setAttribute('aria-selected', String(!q && t.dataset.tab === this.active));
    if (!list.length) {
      const p = document.createElement('p');
      p.className = 'empty';
      p.textContent = empty;
      this.gridEl.replaceChildren(p);
      return;
    }
    this.gridEl.replaceChildren(...list.map((ch) => this._button(ch)));
    this.gridEl.scrollTop = 0;
  }
}
