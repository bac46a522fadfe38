// The small pipelines the browser tests submit, as file trees (path -> content).

// Two cells whose `stream` step prints 3000 lines (more than the 64 KiB the log view loads first),
// a red line, then waits for gate files the test creates, printing a line after each.
export function liveTree(gateDir) {
  return {
    'assay.yaml': `name: live-demo
matrix:
  n: [one, two]
steps:
  - id: prepare
    run: echo prepared
  - id: stream
    needs: [prepare]
    timeout: 5m
    run: |
      i=0
      while [ $i -lt 3000 ]; do printf 'bulk %04d ..........................................................................\\n' $i; i=$((i+1)); done
      printf '\\033[31mred-marker\\033[0m plain-after-red\\n'
      echo ready-for-gate
      while [ ! -e ${gateDir}/gate1-\${{ matrix.n }} ]; do sleep 0.1; done
      echo after-gate-line
      while [ ! -e ${gateDir}/gate2-\${{ matrix.n }} ]; do sleep 0.1; done
      echo final-line
`,
  };
}

// One cell passes, one fails with a recognisable message.
export const failingTree = {
  'assay.yaml': `name: failing-demo
matrix:
  n: [good, bad]
steps:
  - id: build
    run: echo built \${{ matrix.n }}
  - id: test
    needs: [build]
    run: |
      echo "testing \${{ matrix.n }}"
      if [ "\${{ matrix.n }}" = bad ]; then echo "boom: the bad cell failed" >&2; exit 3; fi
`,
};

// A file of `bytes` bytes under a budget of 1000 bytes.
export function sizeTree(bytes) {
  return {
    'n.txt': `${bytes}\n`,
    'assay.yaml': `name: size-demo
steps:
  - id: build
    run: mkdir -p out && head -c $(cat n.txt) /dev/zero > out/f.bin
    outputs: [out/]
    limits:
      size:
        "out/f.bin": 1000
`,
  };
}

// Bytes with markup, a NUL and bytes that are not UTF-8: an artifact must come down unchanged.
export const ARTIFACT_BYTES = Buffer.concat([Buffer.from('<b>firmware</b> v1\n'),
  Buffer.from([0x00, 0x01, 0x7f, 0x80, 0xc3, 0x28, 0xfe, 0xff]), Buffer.from('\r\n<script>window.__xss=10</script>\n')]);

// A step whose outputs are out/fw.bin (ARTIFACT_BYTES) and a file with markup in its name.
export const artifactTree = {
  'fw.src': ARTIFACT_BYTES,
  'assay.yaml': `name: artifact-demo
steps:
  - id: build
    run: |
      mkdir -p out && cp fw.src out/fw.bin
      echo map > 'out/<i>map.txt'
    outputs: [out/]
`,
};

// Markup and a javascript: link in the pipeline's name, the matrix values (so in task names)
// and the step's output; none may run.
export const HOSTILE = ['<script>window.__xss=1</script>', '<img src=x onerror=window.__xss=2>', 'javascript:window.__xss=3'];
export const hostileTree = {
  'assay.yaml': `name: "xss <script>window.__xss=4</script>"
matrix:
  v: ${JSON.stringify(HOSTILE)}
steps:
  - id: echo
    run: |
      printf '%s\\n' "<script>window.__xss=5</script>" '<img src=x onerror="window.__xss=6">' "javascript:window.__xss=7"
      printf '\\033[32m<img src=x onerror="window.__xss=8">\\033[0m\\n'
      echo "value: $ASSAY_MATRIX_V"
`,
};

// 250 cells x 4 steps = 1,000 tasks, each quick once the gate file is there; step d needs a label
// (the queue view groups queued tasks by the labels they need).
export function bigTree(gate) {
  return {
    'assay.yaml': `name: big-demo
matrix:
  n: [${Array.from({ length: 250 }, (_, i) => i + 1).join(', ')}]
steps:
${['a', 'b', 'c', 'd'].map((s) => `  - id: ${s}
    timeout: 5m${s === 'd' ? '\n    requires: [os=linux]' : ''}
    run: |
      while [ ! -e ${gate} ]; do sleep 0.05; done
      echo ${s}
`).join('')}`,
  };
}

// A step that waits for a gate, for the twenty-pages test.
export function gatedTree(gate) {
  return {
    'assay.yaml': `name: gated-demo
steps:
  - id: wait
    timeout: 5m
    run: |
      echo waiting
      while [ ! -e ${gate} ]; do sleep 0.1; done
      echo released
`,
  };
}
