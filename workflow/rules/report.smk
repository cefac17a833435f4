# Figures and tables (simreg.report.targets): each reads the evaluations its registry entry
# names, for the models of its figure grid.


rule figure:
    input:
        unpack(report_inputs),
    output:
        pdf=report(
            "results/figures/{name}.pdf",
            caption="../report/figure.rst",
            category="Figures",
            subcategory="{name}",
            labels={"figure": "{name}", "format": "PDF"},
        ),
        png=report(
            "results/figures/{name}.png",
            caption="../report/figure.rst",
            category="Figures",
            subcategory="{name}",
            labels={"figure": "{name}", "format": "PNG"},
        ),
        data="results/figures/{name}.data.csv",
    log:
        "results/logs/figure/{name}.log",
    wildcard_constraints:
        name="|".join(config["figures"]) or "no_figure",
    localrule: True
    conda:
        "../../envs/simreg.yaml"
    params:
        figure=figure_params,
        reads=report_reads,
    shell:
        "simreg figure {wildcards.name} --out {output.pdf} --params '{params.figure}'"
        " {params.reads} 2>> {log}"


rule table:
    input:
        unpack(report_inputs),
    output:
        csv=report(
            "results/tables/{name}.csv",
            caption="../report/table.rst",
            category="Tables",
            subcategory="{name}",
            labels={"table": "{name}", "format": "CSV"},
        ),
        md=report(
            "results/tables/{name}.md",
            caption="../report/table.rst",
            category="Tables",
            subcategory="{name}",
            labels={"table": "{name}", "format": "Markdown"},
        ),
    log:
        "results/logs/table/{name}.log",
    wildcard_constraints:
        name="|".join(n for n, t in TARGETS.items() if t.kind == "table"),
    localrule: True
    conda:
        "../../envs/simreg.yaml"
    params:
        table=table_params,
        reads=report_reads,
    shell:
        "simreg table {wildcards.name} --out {output.csv} --params '{params.table}'"
        " {params.reads} 2>> {log}"
