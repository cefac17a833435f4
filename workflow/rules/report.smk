# Figures and tables (simreg.report.targets): each reads the evaluations its registry entry
# names, for the models of its figure grid.


rule figure:
    input:
        unpack(report_inputs),
    output:
        pdf=report(
            figure_file("{name}"),
            caption="../report/figure.rst",
            category="Figures",
            subcategory="{name}",
            labels={"figure": "{name}", "format": "PDF"},
        ),
        png=report(
            figure_file("{name}", ".png"),
            caption="../report/figure.rst",
            category="Figures",
            subcategory="{name}",
            labels={"figure": "{name}", "format": "PNG"},
        ),
        data=figure_file("{name}", ".data.csv"),
    log:
        "results/logs/figure/{name}.log",
    benchmark:
        "results/benchmarks/figure/{name}.tsv"
    wildcard_constraints:
        name="|".join(SETTINGS.figures) or "no_figure",
    localrule: True
    conda:
        "../../envs/simreg.yaml"
    params:
        figure=figure_params,
        reads=report_reads,
        code=report_code,
    shell:
        "simreg figure {wildcards.name} --out {output.pdf} --params '{params.figure}'"
        " {params.reads} >> {log} 2>&1"


rule table:
    input:
        unpack(report_inputs),
    output:
        csv=report(
            table_file("{name}"),
            caption="../report/table.rst",
            category="Tables",
            subcategory="{name}",
            labels={"table": "{name}", "format": "CSV"},
        ),
        md=report(
            table_file("{name}", ".md"),
            caption="../report/table.rst",
            category="Tables",
            subcategory="{name}",
            labels={"table": "{name}", "format": "Markdown"},
        ),
    log:
        "results/logs/table/{name}.log",
    benchmark:
        "results/benchmarks/table/{name}.tsv"
    wildcard_constraints:
        name="|".join(n for n, t in TARGETS.items() if t.kind == "table"),
    localrule: True
    conda:
        "../../envs/simreg.yaml"
    params:
        table=table_params,
        reads=report_reads,
        code=report_code,
    shell:
        "simreg table {wildcards.name} --out {output.csv} --params '{params.table}'"
        " {params.reads} >> {log} 2>&1"


# The papers' claims (simreg.report.claims): each reads the evaluations its registry entry
# names, for the models of its configured grids; a claim without a grid is "not run".
rule claims:
    input:
        unpack(claims_inputs_of_config),
    output:
        csv=report(
            CLAIMS_TABLE,
            caption="../report/claims.rst",
            category="Claims",
            labels={"claims": "all", "format": "CSV"},
        ),
        md=report(
            CLAIMS_REPORT,
            caption="../report/claims.rst",
            category="Claims",
            labels={"claims": "all", "format": "Markdown"},
        ),
    log:
        "results/logs/claims.log",
    localrule: True
    conda:
        "../../envs/simreg.yaml"
    params:
        claims=claims_json,
        reads=claims_reads,
        code=command_code("claims"),
    shell:
        "simreg claims --out {output.csv} --md {output.md} --params '{params.claims}'"
        " {params.reads} >> {log} 2>&1"
