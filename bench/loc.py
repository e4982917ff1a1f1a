"""Size of a Python file, as the brevity prize counts it.

    python bench/loc.py predict.py   ->   loc=.. loc100=..

loc counts lines holding code (not comments, blank lines or docstrings); loc100 counts a line of
more than 100 characters once per 100 characters started, so packing code into long lines gains
nothing.
"""
import io, math, sys, tokenize

with open(sys.argv[1]) as f:
    source = f.read()
text, lines = source.splitlines(), set()
for token in tokenize.generate_tokens(io.StringIO(source).readline):
    start = text[token.start[0] - 1].lstrip() if token.type == tokenize.STRING else ""
    docstring = start.startswith('"""')  # a string that opens its line
    if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                      tokenize.DEDENT, tokenize.ENDMARKER) or docstring:
        continue
    lines.update(range(token.start[0], token.end[0] + 1))
loc100 = sum(math.ceil(max(len(text[n - 1].rstrip()), 1) / 100) for n in lines)
print(f"loc={len(lines)} loc100={loc100}")
