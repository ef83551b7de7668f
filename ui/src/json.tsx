/**
 * JSON read without losing digits: `JSON.parse` turns 12345678901234567890 into 12345678901234567000. This
 * parser keeps every number as its source text, and the viewer prints it as such.
 */
export type Lossless =
  | { readonly t: "num"; readonly text: string }
  | { readonly t: "str"; readonly value: string }
  | { readonly t: "lit"; readonly value: boolean | null }
  | { readonly t: "arr"; readonly items: ReadonlyArray<Lossless> }
  | { readonly t: "obj"; readonly entries: ReadonlyArray<readonly [string, Lossless]> }

export const parseLossless = (text: string): Lossless => {
  let i = 0
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++
  }
  const value = (depth: number): Lossless => {
    if (depth > 512) throw new Error("JSON nests too deeply")
    ws()
    const c = text[i]
    if (c === "{") {
      i++
      const entries: Array<readonly [string, Lossless]> = []
      ws()
      if (text[i] === "}") {
        i++
        return { t: "obj", entries }
      }
      for (;;) {
        ws()
        const key = str()
        ws()
        if (text[i++] !== ":") throw new Error(`expected : at ${i}`)
        entries.push([key, value(depth + 1)])
        ws()
        const next = text[i++]
        if (next === "}") return { t: "obj", entries }
        if (next !== ",") throw new Error(`expected , or } at ${i}`)
      }
    }
    if (c === "[") {
      i++
      const items: Array<Lossless> = []
      ws()
      if (text[i] === "]") {
        i++
        return { t: "arr", items }
      }
      for (;;) {
        items.push(value(depth + 1))
        ws()
        const next = text[i++]
        if (next === "]") return { t: "arr", items }
        if (next !== ",") throw new Error(`expected , or ] at ${i}`)
      }
    }
    if (c === '"') return { t: "str", value: str() }
    for (const [word, literal] of [
      ["true", true],
      ["false", false],
      ["null", null]
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length
        return { t: "lit", value: literal }
      }
    }
    const match = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400))
    if (match === null) throw new Error(`unexpected ${c ?? "end"} at ${i}`)
    i += match[0].length
    return { t: "num", text: match[0] }
  }
  const str = (): string => {
    const start = i
    if (text[i++] !== '"') throw new Error(`expected a string at ${start}`)
    while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1
    i++
    return JSON.parse(text.slice(start, i)) as string
  }
  const result = value(0)
  ws()
  if (i !== text.length) throw new Error(`unexpected text at ${i}`)
  return result
}

/** The member `key` of an object, or undefined. */
export const member = (value: Lossless, key: string): Lossless | undefined =>
  value.t === "obj" ? value.entries.find(([k]) => k === key)?.[1] : undefined

export function JsonView({ value, label }: { readonly value: Lossless | undefined; readonly label: string }) {
  if (value === undefined || (value.t === "lit" && value.value === null))
    return <p class="muted">{label}: none</p>
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be focusable (WCAG 2.1.1)
    <section aria-label={label} tabIndex={0}>
      <pre class="json">
        <Node value={value} indent="" />
      </pre>
    </section>
  )
}

function Node({ value, indent }: { readonly value: Lossless; readonly indent: string }) {
  const inner = `${indent}  `
  switch (value.t) {
    case "num":
      return <span class="j-num">{value.text}</span>
    case "str":
      return <span class="j-str">{JSON.stringify(value.value)}</span>
    case "lit":
      return <span class="j-lit">{String(value.value)}</span>
    case "arr":
      if (value.items.length === 0) return <span>[]</span>
      return (
        <span>
          {"[\n"}
          {value.items.map((item, n) => (
            <span key={n}>
              {inner}
              <Node value={item} indent={inner} />
              {n < value.items.length - 1 ? ",\n" : "\n"}
            </span>
          ))}
          {indent}]
        </span>
      )
    case "obj":
      if (value.entries.length === 0) return <span>{"{}"}</span>
      return (
        <span>
          {"{\n"}
          {value.entries.map(([key, item], n) => (
            <span key={key}>
              {inner}
              <span class="j-key">{JSON.stringify(key)}</span>: <Node value={item} indent={inner} />
              {n < value.entries.length - 1 ? ",\n" : "\n"}
            </span>
          ))}
          {indent}
          {"}"}
        </span>
      )
  }
}
